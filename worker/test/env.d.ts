// Lets `exports` from cloudflare:workers know the shape of the Worker's main module.
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import('../src/index.ts');
  }
}
