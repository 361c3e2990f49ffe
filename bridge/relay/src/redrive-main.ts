// Entry of `npm run redrive`: dead-lettered payment events back to their topic (redrive.ts).
// Exits 0 once the dead-letter subscription is drained (or --limit reached), 1 naming the
// problem otherwise; what could not be published stays on the subscription.
import { createPubSubPublisher, PubSubPublishError } from '@edge-checkout/pubsub';
import { createPubSubSubscriber } from '@edge-checkout/pubsub/subscriber';
import { RelayConfigError } from './config.ts';
import { pubSubConnection } from './pubsub-connection.ts';
import { redrive } from './redrive.ts';
import { loadRedriveConfig, REDRIVE_USAGE, RedriveArgumentError, type RedriveConfig } from './redrive-config.ts';

let config: RedriveConfig | null;
try {
  config = loadRedriveConfig(process.argv.slice(2), process.env);
} catch (error) {
  if (!(error instanceof RelayConfigError || error instanceof RedriveArgumentError)) throw error;
  process.stderr.write(`redrive: ${error.message}\n${REDRIVE_USAGE}\n`);
  process.exit(1);
}
if (!config) {
  process.stdout.write(`${REDRIVE_USAGE}\n`);
  process.exit(0);
}

// The relay's own connection; Application Default Credentials are gcloud's login on an
// operator's machine. One token source for both clients.
const connection = pubSubConnection(config);
const subscriber = createPubSubSubscriber({
  projectId: config.projectId,
  subscription: config.subscription,
  ...connection,
});
const publisher = createPubSubPublisher({ projectId: config.projectId, topic: config.topic, ...connection });
const from = `${subscriber.subscriptionPath} to ${publisher.topicPath}`;

try {
  const report = await redrive({
    subscriber,
    publisher,
    dryRun: config.dryRun,
    limit: config.limit,
    drop: new Set(config.drop),
    print: (line) => process.stdout.write(`${line}\n`),
  });
  const perType = Object.entries(report.byType)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, count]) => `${type} ${count}`)
    .join(', ');
  const verb = config.dryRun ? 'would republish (dry run, nothing published or acknowledged)' : 'republished';
  process.stdout.write(`${verb} ${report.total} message(s) from ${from}${perType ? `: ${perType}` : ''}\n`);
  const notPulled = config.drop.filter((id) => !report.dropped.includes(id));
  if (notPulled.length > 0) {
    process.stderr.write(`--drop ${notPulled.join(' ')}: not pulled, so not dropped (no such message left)\n`);
  }
  const { failure } = report;
  if (failure) {
    const reason = failure.error instanceof Error ? failure.error.message : String(failure.error);
    process.stderr.write(
      `redrive stopped: ${reason}\n${failure.unpublished.length} message(s) of that pull left on ${subscriber.subscriptionPath}, not acknowledged, first the failed request's: ${failure.unpublished.join(' ')}\n` +
        (failure.error instanceof PubSubPublishError && failure.error.messageRejected
          ? 'Pub/Sub refused what was sent: list them with --dry-run; one that can never be published is acknowledged without publishing with --drop MESSAGE_ID\n'
          : 'run again once the cause is fixed\n'),
    );
    process.exit(1);
  }
} catch (error) {
  // A pull or an acknowledgement failed: what was published and not acknowledged is pulled
  // again by the next run and published a second time, which consumers drop by eventId.
  process.stderr.write(`redrive failed (${from}): ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
