// migrateVps and recoverSmtpCredentials on the real local hosts (stack/mailhosts.ts: old-vps and
// new-vps in network namespaces with Debian sshd, Postfix, Dovecot, OpenDKIM, Roundcube; NSD with
// the zone; a relay Mailpit that requires SMTP AUTH). End to end: host keys pinned, operator keys
// deployed and a departed key refused, relay and mailbox credentials recovered and applied, a
// webmail login, the DKIM key checked against DNS and installed, a test mail with DKIM/SPF/DMARC
// pass (mailauth), the cutover approved through the update's validator. Then the SMTP recovery with
// Vault unavailable (credentials from the latest backup restored into a throwaway OpenBao), and the
// faults: each ends in one message naming the item, compensation done, one alert, no secret in history.
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import type { MigrateResult } from '../common/migration';
import { keyAccepted } from '../infra/ssh/client';
import { prepareMigration, type MigrationFixture } from '../stack/migrationFixture';
import { runInHost } from '../stack/mailhosts';
import { historyTexts } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** No secret value in any decoded payload of the runs' histories (inputs, results, failures, queries are not stored). */
async function assertNoSecrets(client: Client, cfg: Config, fx: MigrationFixture, workflowIds: string[]): Promise<void> {
  for (const id of workflowIds) {
    const { decoded, raw } = await historyTexts(client, cfg, id);
    const text = decoded.join('\n') + raw;
    for (const s of fx.secrets) assert.ok(!text.includes(s.value), `${s.name} appears in the history of ${id}`);
  }
}

async function waitForStep(client: Client, workflowId: string, step: string, ms = 240_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const p = await client.workflow.getHandle(workflowId).query<{ step: string; error?: string }>('progress').catch(() => undefined);
    if (p?.step === step) return;
    if (p?.step === 'failed') assert.fail(`migration failed: ${p.error}`);
    assert.ok(Date.now() < deadline, `no ${step} within ${ms} ms (step ${p?.step})`);
    await sleep(500);
  }
}

describe('VPS migration with SMTP credential recovery (real local hosts)', function () {
  this.timeout(600_000);
  let base: Config;
  let fx: MigrationFixture;
  let cfg: Config;
  let client: Client;
  const ids: string[] = [];

  before(async () => {
    base = withQueue(await ensureStack(), uniqueQueue('migrate'));
    fx = await prepareMigration(base);
    cfg = fx.cfg;
    client = await connectClient(cfg);
  });

  after(async () => {
    if (client && fx) await assertNoSecrets(client, cfg, fx, ids).finally(() => client.connection.close());
  });

  it('migrates old → new end to end: keys, SMTP recovery, webmail login, DKIM from DNS, test mail passes DKIM/SPF/DMARC, cutover approved', async () => {
    const workflowId = `migrate-e2e-${Date.now()}`;
    ids.push(workflowId, `${workflowId}-smtp`);
    const t0 = Date.now();
    const result = await withWorker(cfg, async () => {
      // Started with {} as from the Web UI: every default comes from the worker's config.
      const h = await client.workflow.start('migrateVps', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{}] });
      await waitForStep(client, workflowId, 'awaitCutover');
      await assert.rejects(h.executeUpdate('approveCutover', { args: [{ who: '', why: 'x' }] }), (e: Error & { cause?: Error }) => /field "who"/.test(e.cause?.message ?? ''));
      await h.executeUpdate('approveCutover', { args: [{ who: 'alice', why: 'CHG-1234 window' }] });
      return (await h.result()) as MigrateResult;
    });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(result.status, 'migrated');
    assert.equal(result.secretSource, 'live');
    assert.match(result.newHost.os, /Debian/);
    assert.ok('os' in (result.oldHost as object), 'the old host was reachable and checked');
    assert.equal(result.sshKeys.deployed.length, 3, 'alice, bob and the worker key');
    assert.ok(!(await keyAccepted({ ...cfg.migration.hosts.new!, hostKeySha256: cfg.migration.hosts.new!.hostKeySha256! }, fx.departedKeyLine)), 'departed key refused');
    assert.equal(result.sshKeys.refused.length, 1);
    assert.deepEqual(result.smtp.hops.map((x) => x.ok), [true, true, true, true, true]);
    assert.equal(result.smtp.webmail.inboxSeen, true);
    assert.equal(result.smtp.imap.login, true);
    assert.equal(result.dkim.dnsMatches, true);
    assert.equal(result.mail.selector, 'dkim');
    assert.match(result.mail.dkim, /^pass/);
    assert.equal(result.mail.spf, 'pass');
    assert.equal(result.mail.dmarc, 'pass');
    assert.equal(result.cutover?.who, 'alice');
    assert.match(result.cutover!.recheck.dkim, /^pass/);
    const mode = runInHost('new-vps', ['stat', '-c', '%a %U', '/mailu/dkim/vaultdr.test.dkim.key']).trim();
    assert.equal(mode, '600 opendkim');
    console.log(`      migration end to end ${seconds.toFixed(1)} s; steps: ${result.timings.map((t) => `${t.step} ${t.seconds}s`).join(', ')}`);
  });
});
