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
import type { MigrateResult, SmtpRecoveryResult } from '../common/migration';
import { keyAccepted } from '../infra/ssh/client';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ImapFlow } from 'imapflow';
import type { BackupResult } from '../common/backup';
import { buildS3Client } from '../infra/clients';
import { freePort } from '../infra/vault/stagingVault';
import { leaseHosts, prepareMigration, resetNewHost, seedMigrationSecrets, type MigrationFixture, type SecretOverrides } from '../stack/migrationFixture';
import { runInHost } from '../stack/mailhosts';
import { stackDir } from '../stack/stack';
import { clearAlertDedup, failureOf, historyTexts, mailpitMessages } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A message delivered into a host's Maildir the way Dovecot's LDA writes one (tmp/ then renamed into
 * new/, or cur/ with flags once read), owned by the mail user. Returns its subject.
 */
function deliverToMaildir(host: 'old-vps' | 'new-vps', email: string, subject: string, seen = false): string {
  const [user, domain] = email.split('@') as [string, string];
  const body = `From: alice@example.net\r\nTo: ${email}\r\nSubject: ${subject}\r\nMessage-ID: <${crypto.randomUUID()}@example.net>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${subject}: ${crypto.randomBytes(24).toString('hex')}\r\n`;
  const name = `${Math.floor(Date.now() / 1000)}.M${crypto.randomInt(1e6)}P${process.pid}.${host},S=${Buffer.byteLength(body)}`;
  const box = `/var/mail/${domain}/${user}`;
  const to = seen ? `${box}/cur/${name}:2,S` : `${box}/new/${name}`;
  runInHost(host, ['sh', '-c', `set -e; mkdir -p ${box}/cur ${box}/new ${box}/tmp; cat > ${box}/tmp/${name}; mv ${box}/tmp/${name} '${to}'; chown -R mail:mail /var/mail/${domain}`], { input: body });
  return subject;
}

/** Subjects in the INBOX of `email` on new-vps, read over IMAP (STARTTLS, the host's CA) with its password. */
async function imapSubjects(cfg: Config, email: string, password: string): Promise<string[]> {
  const [host, port] = cfg.migration.mailHost.imap!.split(':');
  const c = new ImapFlow({ host: host!, port: Number(port), secure: false, doSTARTTLS: true, auth: { user: email, pass: password }, tls: { ca: fs.readFileSync(cfg.migration.mailHost.caFile!), servername: cfg.migration.mailHost.tlsServerName }, logger: false } as ConstructorParameters<typeof ImapFlow>[0]);
  await c.connect();
  try {
    const box = await c.mailboxOpen('INBOX', { readOnly: true });
    if (!box.exists) return [];
    const subjects: string[] = [];
    for await (const msg of c.fetch('1:*', { envelope: true })) subjects.push(msg.envelope?.subject ?? '');
    return subjects;
  } finally {
    await c.logout().catch(() => undefined);
  }
}

/** No secret value in any decoded payload of the runs' histories (inputs, results, failures, queries are not stored). */
async function assertNoSecrets(client: Client, cfg: Config, fx: MigrationFixture, workflowIds: string[]): Promise<void> {
  let decodedSomething = false;
  for (const id of workflowIds) {
    // A run that failed before its child started has no child history.
    const got = await historyTexts(client, cfg, id).catch((e: Error) => (/not found/i.test(e.message) ? undefined : Promise.reject(e)));
    if (!got) continue;
    const { decoded, raw } = got;
    const text = decoded.join('\n') + raw;
    // The check reads decoded payloads: the secrets' paths (not values) are there to be found.
    decodedSomething ||= text.includes('secret/vault-dr/migration');
    for (const s of fx.secrets) assert.ok(!text.includes(s.value), `${s.name} appears in the history of ${id}`);
  }
  assert.ok(decodedSomething, 'no decoded history mentions the secret paths: the leak check would see nothing');
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
  let release: (() => void) | undefined;

  before(async () => {
    release = await leaseHosts();
    base = withQueue(await ensureStack(), uniqueQueue('migrate'));
    fx = await prepareMigration(base);
    cfg = fx.cfg;
    client = await connectClient(cfg);
  });

  after(async () => {
    try {
      if (client && fx) await assertNoSecrets(client, cfg, fx, ids).finally(() => client.connection.close());
    } finally {
      release?.();
    }
  });

  it('migrates old → new end to end: keys, SMTP recovery, webmail login, DKIM from DNS, test mail passes DKIM/SPF/DMARC, mailboxes copied, cutover approved', async () => {
    const workflowId = `migrate-e2e-${Date.now()}`;
    // Mail on the old host before the migration (one unread, one read), none of it on the new host.
    runInHost('new-vps', ['rm', '-rf', '/var/mail/vaultdr.test']);
    const tag = crypto.randomBytes(3).toString('hex');
    const before = [deliverToMaildir('old-vps', fx.mailbox.email, `before migration ${tag} (unread)`), deliverToMaildir('old-vps', fx.mailbox.email, `before migration ${tag} (read)`, true)];
    let late = '';
    ids.push(workflowId, `${workflowId}-smtp`);
    const t0 = Date.now();
    const result = await withWorker(cfg, async () => {
      // Started with {} as from the Web UI: every default comes from the worker's config.
      const h = await client.workflow.start('migrateVps', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{}] });
      await waitForStep(client, workflowId, 'awaitCutover');
      // Arrives at the old host after the first copy, before the switch: the final sync must bring it.
      late = deliverToMaildir('old-vps', fx.mailbox.email, `during the cutover window ${tag}`);
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
    // The mailboxes: counted and checksummed by the workflow, and readable over IMAP on the new host.
    assert.deepEqual(result.mailCopy?.map((c) => c.label), ['before cutover', 'final sync after cutover']);
    assert.ok(result.mailCopy!.every((c) => c.verified && c.messagesOnNew >= c.messages));
    assert.ok(result.mailCopy![0]!.messages >= 2 && result.mailCopy![1]!.messages === result.mailCopy![0]!.messages + 1, JSON.stringify(result.mailCopy));
    const password = fx.secrets.find((s) => s.name === 'mailbox password')!.value;
    const subjects = await imapSubjects(cfg, fx.mailbox.email, password);
    for (const s of [...before, late]) assert.ok(subjects.includes(s), `"${s}" is not in the new host's INBOX over IMAP (${subjects.join(' | ')})`);
    const mode = runInHost('new-vps', ['stat', '-c', '%a %U', '/mailu/dkim/vaultdr.test.dkim.key']).trim();
    assert.equal(mode, '600 opendkim');
    console.log(`      migration end to end ${seconds.toFixed(1)} s; steps: ${result.timings.map((t) => `${t.step} ${t.seconds}s`).join(', ')}`);
  });

  it('SMTP recovery drill: live Vault unavailable → credentials from the latest backup restored into a throwaway OpenBao, mail host reconfigured, webmail login', async () => {
    resetNewHost(fx.hosts, fx.mailbox.email);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const drillCfg: Config = { ...cfg, migration: { ...cfg.migration, vaultAddress: dead } };
    const workflowId = `smtp-recovery-${Date.now()}`;
    ids.push(workflowId);
    const result = await withWorker(drillCfg, async () => {
      // The backup must hold the migration secrets and AppRole written by the fixture.
      const backup = (await client.workflow.execute('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `migrate-backup-${Date.now()}`, args: [{ trigger: 'manual', prune: false }] })) as BackupResult;
      // Our own backup, not "latest": the shared bucket also holds other tests' clusters.
      return (await client.workflow.execute('recoverSmtpCredentials', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ backupId: backup.backupId }] })) as SmtpRecoveryResult;
    });
    assert.equal(result.source, 'backup');
    assert.ok(result.backupId);
    assert.deepEqual(result.hops.map((h) => `${h.hop}:${h.ok}`), ['source reachable:true', 'barrier unsealed:true', 'policy grants read:true', 'decrypts:true', 'format:true']);
    assert.equal(result.webmail.inboxSeen, true);
    assert.equal(result.imap.login, true);
    assert.match(runInHost('new-vps', ['grep', '-c', '^RELAYPASSWORD=stale', '/mailu/mailu.env'], { allowFail: true }).trim(), /^0$/);
  });

  describe('faults: one clear message naming the item, compensation, one alert', () => {
    const s3 = () => buildS3Client(cfg.s3);
    const run = async (name: string, input: Record<string, unknown>, c: Config = cfg) => {
      const workflowId = `migrate-${name}-${Date.now()}`;
      ids.push(workflowId, `${workflowId}-smtp`);
      await clearAlertDedup(s3(), cfg.s3.bucket);
      const before = new Set((await mailpitMessages()).map((x) => x.ID));
      // secretSource live: the fault under test is not the source (the shared Vault may be sealed by another test for a moment).
      const args = [name === 'malformed' ? input : { secretSource: 'live', ...input }];
      const f = await withWorker(c, () => failureOf(client.workflow.execute('migrateVps', { taskQueue: cfg.temporal.taskQueue, workflowId, args })));
      let alerts: string[] = [];
      for (let i = 0; i < 40 && !alerts.length; i++) {
        alerts = (await mailpitMessages()).filter((x) => !before.has(x.ID) && x.Subject.includes('VPS migration')).map((x) => x.Subject);
        if (!alerts.length) await sleep(250);
      }
      return { f, alerts };
    };
    const faultCfg = async (prefix: string, over: SecretOverrides): Promise<Config> => {
      const seeded = await seedMigrationSecrets(prefix, fx.hosts, path.join(stackDir(), 'migration'), over);
      fx.secrets.push(...seeded.secrets);
      return { ...cfg, migration: { ...cfg.migration, secrets: seeded.paths } };
    };
    const hostTarget = () => ({ ...cfg.migration.hosts.new!, hostKeySha256: cfg.migration.hosts.new!.hostKeySha256! });

    it('malformed input: InvalidInput naming the field, nothing touched', async () => {
      const { f, alerts } = await run('malformed', { newHost: { hostKeySha256: 'md5:abc' } });
      assert.equal(f.type, 'InvalidInput');
      assert.match(f.message, /field "newHost.hostKeySha256"/);
      assert.equal(alerts.length, 1, 'one alert');
    });

    it('wrong host key: refused showing both fingerprints, non-retryable', async () => {
      const oldKey = cfg.migration.hosts.old!.hostKeySha256!;
      const { f, alerts } = await run('hostkey', { newHost: { hostKeySha256: oldKey } });
      assert.equal(f.type, 'HostKeyMismatch');
      assert.ok(f.message.includes(oldKey) && f.message.includes(cfg.migration.hosts.new!.hostKeySha256!), f.message);
      assert.match(f.message, /failed at preflightTarget/);
      assert.equal(alerts.length, 1);
      assert.match(alerts[0]!, /failed at preflightTarget/);
    });

    it('unreachable host: HostUnreachable naming the address, after the retries', async () => {
      const { f } = await run('unreachable', { newHost: { port: 2222 } });
      assert.equal(f.type, 'HostUnreachable');
      assert.match(f.message, /10\.231\.0\.3:2222/);
    });

    it('missing secret path: SecretMissing naming the path, nothing changed', async () => {
      const c: Config = { ...cfg, migration: { ...cfg.migration, secrets: { ...cfg.migration.secrets, mailbox: 'vault-dr/migration-missing/mailbox' } } };
      const { f, alerts } = await run('missing', {}, c);
      assert.equal(f.type, 'SecretMissing');
      assert.match(f.message, /secret\/vault-dr\/migration-missing\/mailbox/);
      assert.match(f.message, /nothing had been changed/);
      assert.equal(alerts.length, 1);
    });

    it('wrong SMTP relay password: SmtpAuthFailed naming the secret; authorized_keys and mail configuration restored', async () => {
      const departed = resetNewHost(fx.hosts, fx.mailbox.email);
      const envBefore = runInHost('new-vps', ['cat', '/mailu/mailu.env']);
      const c = await faultCfg('migration-wrongpw', { relayPassword: crypto.randomBytes(12).toString('base64url') });
      const { f, alerts } = await run('wrongpw', {}, c);
      assert.equal(f.type, 'SmtpAuthFailed');
      assert.match(f.message, /secret\/vault-dr\/migration-wrongpw\/smtp-relay/);
      assert.match(f.message, /failed at recoverSmtpCredentials/);
      assert.match(f.message, /previous mail configuration \(mailu.env, DKIM key\) restored/);
      assert.match(f.message, /previous authorized_keys restored/);
      assert.ok(await keyAccepted(hostTarget(), departed), 'the departed key is back (previous authorized_keys restored)');
      assert.equal(runInHost('new-vps', ['cat', '/mailu/mailu.env']), envBefore);
      assert.equal(alerts.length, 1);
      assert.match(alerts[0]!, /failed at recoverSmtpCredentials/);
    });

    it('DKIM key not matching DNS: DkimMismatch before any mail is sent; compensations in reverse order', async () => {
      resetNewHost(fx.hosts, fx.mailbox.email);
      const keyBefore = runInHost('new-vps', ['cat', '/mailu/dkim/vaultdr.test.dkim.key']);
      const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
      const c = await faultCfg('migration-dkim', { dkimPem: other });
      const relayBefore = (await fetchRelayCount(c)).count;
      const { f, alerts } = await run('dkim', {}, c);
      assert.equal(f.type, 'DkimMismatch');
      assert.match(f.message, /failed at installDkimKey/);
      assert.match(f.message, /dkim\._domainkey\.vaultdr\.test/);
      // Reverse order: the mail configuration (changed last) is undone before authorized_keys.
      assert.ok(f.message.indexOf('previous mail configuration') < f.message.indexOf('previous authorized_keys'), f.message);
      assert.equal(runInHost('new-vps', ['cat', '/mailu/dkim/vaultdr.test.dkim.key']), keyBefore);
      assert.equal((await fetchRelayCount(c)).count, relayBefore, 'no mail was sent');
      assert.equal(alerts.length, 1);
    });
  });
});

async function fetchRelayCount(c: Config): Promise<{ count: number }> {
  const r = await fetch(`${c.migration.relayInboxUrl}/api/v1/messages?limit=1`);
  return { count: ((await r.json()) as { total: number }).total };
}
