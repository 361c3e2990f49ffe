import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app.ts';
import { ERROR_CODES } from '../errors.ts';
import { htmlPageHeaders } from '../security-headers.ts';

export function docsRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: "The user's JWT; its `sub` is the user id and `exp` is required.",
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'adminKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'ADMIN_API_KEY',
  });
  // Hono's doc31 builds the document from every route's schemas on each request (13 to 22 ms of
  // CPU); it depends on nothing but the code, so it is built on the first request, once every
  // route is registered, and kept for the isolate.
  let document: string | undefined;
  app.get('/openapi.json', (c) => {
    document ??= JSON.stringify(
      app.getOpenAPI31Document({
        openapi: '3.1.0',
        info: {
          title: 'Edge Checkout API',
          version: '1',
          description:
            'Products, carts and Stripe Checkout at the edge. Errors are application/problem+json (RFC 9457).',
        },
      }),
    );
    return c.body(document, 200, { 'Content-Type': 'application/json' });
  });
  app.get('/docs', htmlPageHeaders({ ownScripts: true, styles: [DOCS_STYLE] }), (c) => c.html(docsPage()));
  app.get('/docs.js', (c) =>
    c.body(DOCS_SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }),
  );
}

const DOCS_STYLE = `
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1a1a1a}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.op{border:1px solid #ddd;border-radius:6px;margin:.75rem 0;padding:.5rem .75rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.put{color:#a60}.delete{color:#c22}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:13px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
`;

// Renders /openapi.json in the browser, served as /docs.js (the page has no inline script) and
// free of third-party assets, so /docs also works offline.
const DOCS_SCRIPT = `
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (ch) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[ch]));
fetch('/openapi.json').then((r) => r.json()).then((doc) => {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    (byTag[(op.tags || ['Other'])[0]] ||= []).push({ path, method, op });
  }
  let out = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    out += '<h2>' + esc(tag) + '</h2>';
    for (const { path, method, op } of ops) {
      const body = op.requestBody?.content?.['application/json']?.schema;
      out += '<div class="op"><span class="m ' + method + '">' + method + '</span><code>' + esc(path) + '</code>'
        + '<div>' + esc(op.summary) + (op.security ? ' <em>(auth: ' + esc(op.security.map((s) => Object.keys(s)[0]).join(', ')) + ')</em>' : '') + '</div>'
        + (body ? '<details><summary>Request body</summary><pre>' + esc(JSON.stringify(body, null, 2)) + '</pre></details>' : '')
        + '<details><summary>Responses: ' + esc(Object.keys(op.responses).join(', ')) + '</summary><pre>'
        + esc(JSON.stringify(op.responses, null, 2)) + '</pre></details></div>';
    }
  }
  out += '<h2>Schemas</h2>';
  for (const [name, schema] of Object.entries(doc.components?.schemas || {})) {
    out += '<details id="schema-' + esc(name) + '"><summary>' + esc(name) + '</summary><pre>' + esc(JSON.stringify(schema, null, 2)) + '</pre></details>';
  }
  document.getElementById('ops').innerHTML = out;
}).catch((e) => { document.getElementById('ops').textContent = 'Could not load /openapi.json: ' + e; });
`;

function docsPage(): string {
  const codes = ERROR_CODES.map(
    ([code, status, title]) =>
      `<tr id="error-${code}"><td><code>${code}</code></td><td>${status}</td><td>${title}</td></tr>`,
  ).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Edge Checkout API</title>
<style>${DOCS_STYLE}</style></head><body>
<h1>Edge Checkout API</h1>
<p>Machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<div id="ops">Loading…</div>
<h2>Error codes</h2><table><tr><th>code</th><th>status</th><th>title</th></tr>${codes}</table>
<script src="/docs.js"></script></body></html>`;
}
