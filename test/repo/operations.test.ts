// The runbook (docs/operations.md) and the README can be followed as written: every wrangler
// command in their shell blocks exists in the wrangler this repository pins and takes the
// flags and arguments they give it, every `npm run` script exists, and the runbook's table of
// log messages names exactly the messages the Worker writes.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const DOCS = ['docs/operations.md', 'README.md'];
const WRANGLER = path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js');
// `--help` needs no account, and wrangler must not phone home while it runs.
const OFFLINE = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
};

/** Each shell command of the ```sh blocks of `file`, continuation lines joined, as words. */
function shellCommands(file: string): string[][] {
  const blocks = [...read(file).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\\\n/g, ' '));
  return blocks.flatMap((block) => block.split('\n').flatMap(commandsOfLine));
}

/**
 * The simple commands of one line (split at `|`, `&&`, `;`), as words: quotes and `$(…)` kept
 * inside their word, a comment, redirection (`< file`) and what follows it dropped. `<name>`
 * is a placeholder the reader fills in, one word.
 */
function commandsOfLine(line: string): string[][] {
  const commands: string[][] = [[]];
  let word = '';
  let redirected = false;
  const end = () => {
    if (word && !redirected) commands.at(-1)!.push(word);
    word = '';
  };
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    const rest = line.slice(i);
    if (ch === "'" || ch === '"') {
      const close = line.indexOf(ch, i + 1);
      word += line.slice(i, close + 1);
      i = close;
    } else if (rest.startsWith('$(')) {
      let depth = 0;
      let j = i;
      for (; j < line.length; j++) {
        if (line[j] === '(') depth++;
        if (line[j] === ')' && --depth === 0) break;
      }
      word += line.slice(i, j + 1);
      i = j;
    } else if (ch === '<' && /^<[\w-]+>/.test(rest) && !word) {
      word = /^<[\w-]+>/.exec(rest)![0];
      i += word.length - 1;
    } else if (ch === ' ' || ch === '\t') {
      end();
    } else if (ch === '#' && !word) {
      break;
    } else if (ch === '|' || ch === ';' || rest.startsWith('&&')) {
      end();
      redirected = false;
      commands.push([]);
      if (ch === '&') i++;
    } else if ((ch === '<' || ch === '>') && !word) {
      redirected = true;
    } else {
      word += ch;
    }
  }
  end();
  return commands.filter((c) => c.length > 0);
}

const commands = DOCS.flatMap((file) => shellCommands(file).map((words) => ({ file, words })));

/**
 * `npx wrangler …` (the env assignments before it aside): wrangler's arguments, once per shape
 * (`secret put DATABASE_URL` and `secret put ADMIN_API_KEY` are one check).
 */
const wranglerCalls = [
  ...new Map(
    commands.flatMap(({ file, words }) => {
      const at = words.indexOf('wrangler');
      if (at < 1 || words[at - 1] !== 'npx') return [];
      const args = words.slice(at + 1);
      const shape = args.map((a) => (/^[A-Z][A-Z0-9_]+$/.test(a) ? 'NAME' : a)).join(' ');
      return [[shape, { file, args }] as const];
    }),
  ).values(),
];

describe('the commands of docs/operations.md and the README', () => {
  it('finds the runbook’s wrangler commands', () => {
    const names = wranglerCalls.map(({ args }) =>
      args
        .filter((a) => !a.startsWith('-'))
        .slice(0, 2)
        .join(' '),
    );
    for (const expected of ['login', 'deploy', 'rollback', 'deployments list', 'secret put', 'tail'])
      expect(
        names.some((n) => n.startsWith(expected)),
        expected,
      ).toBe(true);
  });

  // Each check starts wrangler, about 1.4 s of CPU: one after the other, and once per command
  // line (the five `tail` lines are one help). Side by side (five at a time, vitest's
  // maxConcurrency) each test lasted as long as five starts, 15-20 s of its 30 s on one busy
  // core, and the file was no faster (56 s, against 29 s like this).
  const helps = new Map<string, Promise<string>>();
  const help = (words: string[]) => {
    const key = JSON.stringify(words);
    if (!helps.has(key))
      helps.set(
        key,
        promisify(execFile)(process.execPath, [WRANGLER, ...words, '--help'], { cwd: ROOT, env: OFFLINE }).then(
          ({ stdout }) => stdout,
        ),
      );
    return helps.get(key)!;
  };

  it.each(wranglerCalls.map(({ file, args }) => [args.join(' '), file, args] as const))(
    'wrangler %s (%s): the command exists, with these arguments and flags',
    async (_, _file, args) => {
      // The words before the first flag: the command's path, then its positional arguments.
      const firstFlag = args.findIndex((a) => a.startsWith('-'));
      const words = firstFlag < 0 ? args : args.slice(0, firstFlag);
      const flags = args.filter((a) => a.startsWith('-')).map((a) => a.split('=')[0]!);
      const stdout = await help(words);
      // The usage line, e.g. `wrangler secret put <key>` or `wrangler rollback [version-id]`.
      const usage = stdout.split('\n')[0]!.trim().split(/\s+/).slice(1);
      const commandPath = usage.filter((w) => !/^[<[]/.test(w));
      const positionals = usage.length - commandPath.length;
      expect(words.slice(0, commandPath.length), stdout).toEqual(commandPath);
      expect(words.length - commandPath.length, `more arguments than ${usage.join(' ')} takes`).toBeLessThanOrEqual(
        positionals,
      );
      for (const flag of flags) expect(stdout, `${flag} of wrangler ${commandPath.join(' ')}`).toMatch(flagIn(flag));
    },
  );

  it('runs only npm scripts that exist', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const used = commands.flatMap(({ words }) => {
      const at = words.indexOf('run');
      return words[at - 1] === 'npm' && at > 0 ? [words.slice(at + 1).find((w) => !w.startsWith('-'))!] : [];
    });
    expect(used).toContain('db:migrate');
    for (const script of used) expect(scripts, `npm run ${script}`).toContain(script);
  });

  it('starts the long-running services in place of the shell npm runs them with', () => {
    // npm passes a SIGTERM to the shell only, which dies without passing it on: the service must
    // be that process (`exec`) to stop cleanly. bridge/relay/test/main.test.ts signals npm itself.
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    for (const name of ['dev', 'relay', 'stripe:standin']) expect(scripts[name], name).toMatch(/^exec node /);
  });
});

/** `--env` as wrangler's help lists it (`-e, --env  …`), not as the start of a longer flag. */
function flagIn(flag: string): RegExp {
  return new RegExp(`(^|[\\s,])${flag.replace(/[-]/g, '\\-')}(?=[\\s,]|$)`, 'm');
}

describe("the runbook's log messages", () => {
  it('explains every message the Worker logs, and no other', () => {
    const sources = readdirSync(path.join(ROOT, 'worker/src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => read(`worker/src/${f}`));
    // The first argument of log.info/warn/error: a message, or a choice between messages.
    const logged = new Set(
      sources.flatMap((text) =>
        [...text.matchAll(/\blog\.(?:info|warn|error)\(\s*([^,]+),/g)].flatMap((m) =>
          [...m[1]!.matchAll(/'([a-z_]+)'/g)].map((q) => q[1]!),
        ),
      ),
    );
    const runbook = read('docs/operations.md');
    const table = runbook.slice(runbook.indexOf('| `msg`'), runbook.indexOf('\n\n', runbook.indexOf('| `msg`')));
    const explained = new Set(
      table
        .split('\n')
        .slice(2)
        .flatMap((row) => [...row.split('|')[1]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!)),
    );
    expect(logged.size).toBeGreaterThan(5);
    expect([...explained].sort()).toEqual([...logged].sort());
  });

  it('explains every warning and error the relay logs, and no other', () => {
    const sources = readdirSync(path.join(ROOT, 'bridge/relay/src'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => read(`bridge/relay/src/${f}`));
    // log(severity, message, …) and jsonLog(…): a message's fixed start, up to a `${…}`.
    const logged = new Set(
      sources.flatMap((text) =>
        [...text.matchAll(/\b(?:log|jsonLog)\(\s*([^,]+),\s*['`]([^'`$]+)/g)]
          .filter((m) => /WARNING|ERROR/.test(m[1]!))
          .map((m) => m[2]!.replace(/[:\s]+$/, '')),
      ),
    );
    const runbook = read('docs/operations.md');
    const start = runbook.indexOf('| `message` (starts with)');
    const rows = runbook.slice(start, runbook.indexOf('\n\n', start)).split('\n').slice(2);
    const explained = rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
    expect(logged.size).toBeGreaterThan(5);
    for (const message of logged) {
      expect(
        explained.filter((start) => message.startsWith(start)),
        message,
      ).toHaveLength(1);
    }
    for (const start of explained) {
      expect(
        [...logged].some((message) => message.startsWith(start)),
        start,
      ).toBe(true);
    }
  });
});
