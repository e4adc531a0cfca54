// The app's notification layer against real Mailpit and OpenBao, with a local receiver speaking
// Slack's and PagerDuty's documented APIs: routing by severity, secrets read from Vault (and kept
// in cache when Vault seals), and bad channel configuration reported, never a silently dropped alert.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { notifyActivities, type AlertOutcome, type AlertRequest } from '../activities/notify/notify';
import { ChannelSecretStore } from '../infra/mail/alertChannels';
import { buildClients } from '../infra/clients';
import type { Config } from '../infra/config';
import { configureLocalAlertChannels, unsealBao } from '../stack/stack';
import { bao, mailpitMessages } from './helpers/inspect';
import { startSaasReceiver } from './helpers/receivers';
import { ensureStack } from './helpers/stack';

describe('alert channels: e-mail, Slack, PagerDuty (real stack + local SaaS receiver)', function () {
  this.timeout(120_000);
  let cfg: Config;
  let receiver: Awaited<ReturnType<typeof startSaasReceiver>>;
  const routingKey = crypto.randomBytes(16).toString('hex');
  const slackPath = 'secret/data/vault-dr/alerting/slack';
  const pdPath = 'secret/data/vault-dr/alerting/pagerduty';

  before(async () => {
    cfg = await ensureStack();
    receiver = await startSaasReceiver();
  });
  after(async () => {
    // Put the stack's own channels (the local Slack/PagerDuty stand-in) back.
    await configureLocalAlertChannels();
    await receiver?.close();
  });

  const configure = async (slack: Record<string, string> | undefined, pd: Record<string, string> | undefined) => {
    for (const [p, v] of [[slackPath, slack], [pdPath, pd]] as const) {
      if (v) assert.equal((await bao('POST', p, { data: v })).status, 200);
      else await bao('DELETE', p.replace('/data/', '/metadata/'));
    }
  };
  const activities = (store: ChannelSecretStore) => {
    const { mail, s3 } = buildClients(cfg);
    return notifyActivities({ mail, s3, bucket: cfg.s3.bucket, from: cfg.smtp.from, to: cfg.smtp.alertTo, dedupWindowMinutes: 60, channelSecrets: store });
  };
  const alert = (severity: AlertRequest['severity']): AlertRequest => ({
    severity,
    dedupKey: `test/${severity}/${crypto.randomBytes(4).toString('hex')}`,
    summary: `test alert ${severity} ${Date.now()}`,
    workflowId: 'alert-test',
    runId: 'run-1',
    details: { purpose: 'alert channel test' },
  });
  const send = (store: ChannelSecretStore, req: AlertRequest) => new MockActivityEnvironment().run(activities(store).sendAlert, req) as Promise<AlertOutcome>;
  const okChannels = (o: AlertOutcome) => o.channels.filter((c) => c.ok).map((c) => c.channel).sort();

  it('routes critical → PagerDuty + Slack + e-mail, warning → Slack + e-mail, info → e-mail, in their documented shapes', async () => {
    await configure({ webhook_url: `${receiver.url}/services/T000/B000/XXXX` }, { routing_key: routingKey, events_url: `${receiver.url}/v2/enqueue` });
    const store = new ChannelSecretStore(buildClients(cfg).bao, 'secret', 'vault-dr/alerting', 0);
    const critical = alert('critical');
    assert.deepEqual(okChannels(await send(store, critical)), ['email', 'pagerduty', 'slack']);
    const pd = receiver.received.filter((r) => r.service === 'pagerduty');
    assert.equal(pd.length, 1);
    assert.equal(pd[0]!.body.routing_key, routingKey);
    assert.equal(pd[0]!.body.event_action, 'trigger');
    assert.equal(pd[0]!.body.dedup_key, critical.dedupKey);
    assert.equal(pd[0]!.body.payload.severity, 'critical');
    assert.equal(pd[0]!.body.payload.summary, critical.summary);
    assert.match(receiver.received.find((r) => r.service === 'slack')!.body.text, new RegExp(critical.summary));
    assert.ok((await mailpitMessages()).some((m) => m.Subject === `[vault-dr CRITICAL] ${critical.summary}`));

    const warning = alert('warning');
    assert.deepEqual(okChannels(await send(store, warning)), ['email', 'slack']);
    const info = alert('info');
    assert.deepEqual(okChannels(await send(store, info)), ['email']);
    assert.equal(receiver.received.filter((r) => r.service === 'pagerduty').length, 1, 'only critical pages');
    assert.equal(receiver.received.filter((r) => r.service === 'slack').length, 2, 'info does not go to Slack');
  });

  it('reports a malformed PagerDuty config and an unreachable Slack in the outcome, and still delivers by e-mail', async () => {
    await configure({ webhook_url: 'http://127.0.0.1:1/services/T/B/X' }, { events_url: `${receiver.url}/v2/enqueue` });
    const store = new ChannelSecretStore(buildClients(cfg).bao, 'secret', 'vault-dr/alerting', 0);
    const out = await send(store, alert('critical'));
    assert.equal(out.sent, true);
    const byName = Object.fromEntries(out.channels.map((c) => [c.channel, c]));
    assert.equal(byName.email!.ok, true);
    assert.equal(byName.pagerduty!.ok, false);
    assert.match(byName.pagerduty!.detail, /pagerduty has no routing_key/);
    assert.equal(byName.slack!.ok, false);
    assert.match(byName.slack!.detail, /fetch failed|ECONNREFUSED/);
    assert.ok(!JSON.stringify(out).includes('127.0.0.1:1/services'), 'the webhook URL is a secret and must not be reported');
  });

  it('keeps alerting on Slack and PagerDuty while Vault is sealed (secrets cached), and fails loudly when nothing delivers', async () => {
    await configure({ webhook_url: `${receiver.url}/services/T000/B000/XXXX` }, { routing_key: routingKey, events_url: `${receiver.url}/v2/enqueue` });
    const store = new ChannelSecretStore(buildClients(cfg).bao, 'secret', 'vault-dr/alerting', 0);
    await send(store, alert('info')); // warms the cache
    assert.equal((await bao('PUT', 'sys/seal')).status, 204);
    try {
      const before = receiver.received.length;
      const out = await send(store, alert('critical'));
      assert.deepEqual(okChannels(out), ['email', 'pagerduty', 'slack']);
      assert.equal(receiver.received.length, before + 2);

      const { mail, s3 } = buildClients(cfg);
      const cold = notifyActivities({ mail, s3, bucket: cfg.s3.bucket, from: cfg.smtp.from, to: [], dedupWindowMinutes: 60, channelSecrets: new ChannelSecretStore(buildClients(cfg).bao, 'secret', 'vault-dr/alerting', 0) });
      await assert.rejects(new MockActivityEnvironment().run(cold.sendAlert, alert('critical')), /alert not delivered on any channel: pagerduty: cannot read channel secrets from Vault.*email: no alert recipients configured/);
    } finally {
      await unsealBao();
    }
  });
});
