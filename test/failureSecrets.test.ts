// The failure path keeps secrets and error text out of plaintext: a restore whose validation key
// file is malformed (its content a known marker) fails with a clear, readable error, and
// - the raw workflow history stores no failure message or stack trace in plaintext (the failure
//   converter encodes them, the payload codec encrypts them), while a client with the codec still
//   reads the whole message;
// - neither the history, the alert e-mail (Mailpit), the CLI nor the worker's log holds the marker.
// The worker runs as operators run it (a child process), so its real log is what is checked.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { buildS3Client } from '../infra/clients';
import { EncryptionCodec, loadKeyring } from '../infra/temporal/codec';
import type { BackupResult } from '../common/backup';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import { stackDir } from '../stack/stack';
import { leaseHosts, prepareMigration, seedMigrationSecrets, writeWorkerConfigFile } from '../stack/migrationFixture';
import { clearAlertDedup, failureOf, historyFailures, historyTexts, mailpitMessages, mailpitText, vaultdr, vaultdrAsync } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';

const WORKER = path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js');
// Short on purpose: JSON.parse quotes only about the first 10 characters of its input, so the
// whole marker must fit in that window for a leak to show. Letters outside hex and base64 blocks.
const MARKER = `QZ${Array.from(crypto.randomBytes(6), (b) => String.fromCharCode(71 + (b % 20))).join('')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('failure path: no plaintext error text, no secret in history, alert, CLI or log (real stack)', function () {
  this.timeout(240_000);
  let cfg: Config;
  let client: Client;
  let child: ChildProcess;
  let log = '';
  let tmp: string;
  let keyFile: string;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('failsec'));
    client = await connectClient(cfg);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-failsec-'));
    keyFile = path.join(tmp, 'validation-key.json');
    // A common mistake: the raw key pasted where the JSON key file belongs. JSON.parse's message
    // quotes the start of its input, here the secret itself.
    fs.writeFileSync(keyFile, `${MARKER}${crypto.randomBytes(24).toString('base64')}\n`, { mode: 0o600 });
    const env = {
      ...process.env,
      VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'),
      VAULTDR_TASK_QUEUE: cfg.temporal.taskQueue,
      VAULTDR_BACKUP_VALIDATION_KEY_FILE: keyFile,
      VAULTDR_LOG_LEVEL: 'DEBUG',
      VAULTDR_CODEC_LISTEN: '127.0.0.1:18091',
      VAULTDR_METRICS_LISTEN: '127.0.0.1:19466',
    };
    child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/state: 'RUNNING'/.test(log)) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `worker did not start:\n${log}`);
      await sleep(200);
    }
  });

  after(async () => {
    child?.kill('SIGTERM');
    await client?.connection.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a restore with a malformed validation key file fails readably, and no copy of its content or plaintext error text is stored', async () => {
    const s3 = buildS3Client(cfg.s3);
    await clearAlertDedup(s3, cfg.s3.bucket);
    const backup = (await client.workflow.execute('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `failsec-backup-${Date.now()}`, args: [{ trigger: 'manual', prune: false }] })) as BackupResult;
    const before = new Set((await mailpitMessages()).map((m) => m.ID));
    const workflowId = `failsec-restore-${Date.now()}`;
    const h = await client.workflow.start('restoreVault', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ backupId: backup.backupId, target: 'staging', reason: 'failure path test' }] });

    // Readable through the codec: the type, the file, what is wrong.
    const f = await failureOf(h.result());
    assert.equal(f.type, 'KeyMaterialMissing');
    assert.match(f.message, /verifyBackupBeforeRestore/);
    assert.ok(f.message.includes(keyFile) && /not valid JSON/.test(f.message), f.message);
    assert.ok(!f.message.includes(MARKER), f.message);

    // The stored history: every failure's message and stack trace is encoded, none in plaintext.
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    const failures = historyFailures(history.events);
    assert.ok(failures.length >= 2, `expected the activity's and the workflow's failures, found ${failures.length}`);
    for (const x of failures) {
      assert.equal(x.message, 'Encoded failure', `a failure message is stored in plaintext: ${x.message}`);
      assert.equal(x.stackTrace ?? '', '', 'a stack trace is stored in plaintext');
      assert.ok(x.encodedAttributes, 'the failure has no encoded attributes');
    }
    const raw = JSON.stringify(history, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
    for (const plain of ['not valid JSON', keyFile, 'private key file', MARKER]) assert.ok(!raw.includes(plain), `the raw history holds "${plain}"`);
    // ...and the encoded attributes decode (with the codec) to the full message.
    const codec = new EncryptionCodec(loadKeyring(cfg.codec.keysFile));
    const decoded = await codec.decode(failures.map((x) => x.encodedAttributes!));
    const attrs = decoded.map((p) => defaultPayloadConverter.fromPayload<{ message: string; stack_trace?: string }>(p));
    assert.ok(attrs.some((a) => /not valid JSON/.test(a.message) && a.message.includes(keyFile)), JSON.stringify(attrs.map((a) => a.message)));
    assert.ok(attrs.every((a) => !JSON.stringify(a).includes(MARKER)), 'a decoded failure holds the marker');

    // The alert e-mail names the problem, not the content.
    let mail: string | undefined;
    for (let i = 0; i < 60 && !mail; i++) {
      for (const m of (await mailpitMessages()).filter((x) => !before.has(x.ID))) {
        const text = await mailpitText(m.ID);
        if (text.includes(workflowId) || text.includes(backup.backupId)) mail = `${m.Subject}\n${text}`;
      }
      if (!mail) await sleep(1000);
    }
    assert.ok(mail, 'no alert e-mail for the failed restore');
    assert.match(mail, /not valid JSON/);
    assert.ok(!mail.includes(MARKER), 'the alert e-mail holds the marker');

    // The CLI and the worker's own log.
    const status = vaultdr(['restore', 'status', workflowId]);
    assert.ok(!`${status.stdout}${status.stderr}`.includes(MARKER), 'the CLI prints the marker');
    assert.ok(log.length > 0);
    assert.ok(!log.includes(MARKER), 'the worker log holds the marker');
  });
});

// The same for the VPS migration (issue 14): a worker process with the migration role, a migration
// that fails after changing new-vps (wrong relay password: compensation runs), and the SMTP recovery
// through the CLI. No SSH private key, relay or mailbox password, DKIM key or AppRole secret-id may
// appear in the decoded history of either workflow, the alert e-mail, the CLI's output or the log.
describe('failure path of the VPS migration: no SSH key, password or DKIM key in history, alert, CLI or log (real hosts)', function () {
  this.timeout(300_000);
  let release: (() => void) | undefined;
  let child: ChildProcess | undefined;
  let client: Client | undefined;
  let log = '';
  let tmp: string;

  after(async () => {
    child?.kill('SIGTERM');
    await client?.connection.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    release?.();
  });

  it('a migration failing at recoverSmtpCredentials and a CLI SMTP recovery leak no secret value', async () => {
    release = await leaseHosts();
    const base = withQueue(await ensureStack(), uniqueQueue('failsec-mig'));
    const fx = await prepareMigration(base);
    const wrong = await seedMigrationSecrets('migration-failsec', fx.hosts, path.join(stackDir(), 'migration'), { relayPassword: `QZ${crypto.randomBytes(12).toString('base64url')}` });
    const secrets = [...fx.secrets, ...wrong.secrets];
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-failsec-mig-'));
    const cfgFile = writeWorkerConfigFile(tmp, { ...fx.cfg.migration, secrets: wrong.paths });
    const env = { ...process.env, VAULTDR_CONFIG: cfgFile, VAULTDR_TASK_QUEUE: base.temporal.taskQueue, VAULTDR_LOG_LEVEL: 'DEBUG', VAULTDR_CODEC_LISTEN: '127.0.0.1:18093', VAULTDR_METRICS_LISTEN: '127.0.0.1:19468', VAULTDR_SHARE_INTAKE_LISTEN: '127.0.0.1:18094' };
    child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/state: 'RUNNING'/.test(log)) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `worker did not start:\n${log}`);
      await sleep(200);
    }
    client = await connectClient(base);
    await clearAlertDedup(buildS3Client(base.s3), base.s3.bucket);
    const before = new Set((await mailpitMessages()).map((m) => m.ID));
    const workflowId = `failsec-migrate-${Date.now()}`;
    const f = await failureOf(client.workflow.execute('migrateVps', { taskQueue: base.temporal.taskQueue, workflowId, args: [{ secretSource: 'live', awaitCutover: false }] }));
    assert.equal(f.type, 'SmtpAuthFailed');
    assert.match(f.message, /undone: previous mail configuration/);

    // CLI: the SMTP recovery alone, failing the same way, printed by `vaultdr migration recover-smtp`.
    const cli = await vaultdrAsync(['migration', 'recover-smtp', '--secret-source', 'live'], { VAULTDR_CONFIG: cfgFile, VAULTDR_TASK_QUEUE: base.temporal.taskQueue });
    assert.notEqual(cli.code, 0);
    assert.match(`${cli.stdout}${cli.stderr}`, /refused the credentials/);

    let mail = '';
    for (let i = 0; i < 40 && !mail; i++) {
      for (const m of (await mailpitMessages()).filter((x) => !before.has(x.ID) && x.Subject.includes('VPS migration'))) mail = `${m.Subject}\n${await mailpitText(m.ID)}`;
      if (!mail) await sleep(500);
    }
    assert.match(mail, /failed at recoverSmtpCredentials/);
    const texts: string[] = [mail, cli.stdout, cli.stderr, log];
    for (const id of [workflowId, `${workflowId}-smtp`]) {
      const h = await historyTexts(client, base, id);
      texts.push(h.decoded.join('\n'), h.raw);
    }
    assert.ok(texts.join('\n').includes('secret/vault-dr/migration-failsec/smtp-relay'), 'the decoded texts name the secret path (the check sees decoded content)');
    for (const s of secrets) {
      for (const [i, t] of texts.entries()) assert.ok(!t.includes(s.value), `${s.name} appears in ${['the alert', 'CLI stdout', 'CLI stderr', 'the worker log', 'history'][Math.min(i, 4)]}`);
    }
  });
});
