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
import { ensureRotatorToken, stackDir } from '../stack/stack';
import { leaseHosts, prepareMigration, seedMigrationSecrets, writeWorkerConfigFile } from '../stack/migrationFixture';
import { withWorker } from './helpers/worker';
import type { Activities } from '../workers/worker';
import { bao, clearAlertDedup, failureOf, historyFailures, historyTexts, mailpitMessages, mailpitText, stackSecrets, vaultdr, vaultdrAsync, waitForMailNaming } from './helpers/inspect';
import type { BreachProgress } from '../common/incident';
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
  let tenantsFile: string;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('failsec'));
    client = await connectClient(cfg);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-failsec-'));
    keyFile = path.join(tmp, 'validation-key.json');
    // A common mistake: the raw key pasted where the JSON key file belongs. JSON.parse's message
    // quotes the start of its input, here the secret itself.
    fs.writeFileSync(keyFile, `${MARKER}${crypto.randomBytes(24).toString('base64')}\n`, { mode: 0o600 });
    tenantsFile = path.join(tmp, 'tenants.json');
    fs.writeFileSync(tenantsFile, JSON.stringify({ tenants: [{ id: 'failsec', name: 'Failsec Ltd', noticeEmail: `dpo+${MARKER.toLowerCase()}@failsec.test`, secretPaths: ['secret/data/failsec/db'] }] }));
    const env = {
      ...process.env,
      VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'),
      VAULTDR_TASK_QUEUE: cfg.temporal.taskQueue,
      VAULTDR_BACKUP_VALIDATION_KEY_FILE: keyFile,
      VAULTDR_LOG_LEVEL: 'DEBUG',
      VAULTDR_CODEC_LISTEN: '127.0.0.1:18091',
      VAULTDR_METRICS_LISTEN: '127.0.0.1:19466',
      // breachResponse's tenant registry for this worker (a file; the training test covers Vault KV).
      VAULTDR_INCIDENT_TENANTS_FILE: tenantsFile,
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
    const mail = await waitForMailNaming([workflowId, backup.backupId], before, { timeoutMs: 60_000 });
    assert.ok(mail, 'no alert e-mail for the failed restore');
    assert.match(mail, /not valid JSON/);
    assert.ok(!mail.includes(MARKER), 'the alert e-mail holds the marker');

    // The CLI and the worker's own log.
    const status = vaultdr(['restore', 'status', workflowId]);
    assert.ok(!`${status.stdout}${status.stderr}`.includes(MARKER), 'the CLI prints the marker');
    assert.ok(log.length > 0);
    assert.ok(!log.includes(MARKER), 'the worker log holds the marker');
  });
  it('breachResponse: a secret pasted into the input or a responder update is refused without being echoed, and no stack secret reaches history, notice, CLI or log', async () => {
    const root = stackSecrets().find((x) => x.name === 'root token')!.value;
    // The input: refused naming the field, the value not repeated.
    const bad = await client.workflow.start('breachResponse', { taskQueue: cfg.temporal.taskQueue, workflowId: `failsec-breach-bad-${Date.now()}`, args: [{ training: true, summary: `root token ${root} was in a ticket` }] });
    const f = await failureOf(bad.result());
    assert.equal(f.type, 'InvalidInput');
    assert.match(f.message, /field "summary": looks like it contains/);
    assert.ok(!f.message.includes(root), 'the failure repeats the secret');

    const workflowId = `failsec-breach-${Date.now()}`;
    const h = await client.workflow.start('breachResponse', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ training: true, credentialClasses: [], declaredBy: 'alice' }] });
    const until = async (step: string) => {
      for (let i = 0; i < 300; i++) {
        const p = await h.query<BreachProgress>('progress');
        if (p.step === step) return p;
        assert.notEqual(p.step, 'failed', p.error);
        await sleep(100);
      }
      assert.fail(`never reached ${step}`);
    };
    await until('awaitAcknowledgement');
    await h.executeUpdate('acknowledge', { args: [{ who: 'bob' }] });
    await until('awaitContainmentApproval');
    // A responder pastes the root token: the validator refuses it, so it never enters history.
    await assert.rejects(h.executeUpdate('approveContainment', { args: [{ who: 'bob', approve: true, why: `revoked ${root}` }] }));
    await h.executeUpdate('approveContainment', { args: [{ who: 'bob', approve: true, why: 'revoke and rotate' }] });
    const p = await until('awaitNoticeApproval');
    await h.executeUpdate('approveNotice', { args: [{ who: 'dana', approve: true, previewDigest: p.notices!.previewDigest, why: 'read' }] });
    await until('awaitIncidentClose');
    await h.executeUpdate('closeIncident', { args: [{ who: 'bob', summary: 'failure-path check' }] });
    await h.result();

    const texts = await historyTexts(client, cfg, workflowId);
    let notice: string | undefined;
    for (let i = 0; i < 50 && !notice; i++) {
      const m = (await mailpitMessages()).find((x) => x.To.some((t) => t.Address.includes(MARKER.toLowerCase())));
      if (m) notice = `${m.Subject}\n${await mailpitText(m.ID)}`;
      else await sleep(200);
    }
    assert.ok(notice && notice.startsWith('[TRAINING]'), 'no training notice in Mailpit');
    const review = vaultdr(['incident', 'review', workflowId]);
    assert.equal(review.code, 0, review.stderr);
    const everything = [texts.raw, ...texts.decoded, notice, review.stdout, log].join('\n');
    for (const x of stackSecrets()) assert.ok(!everything.includes(x.value), `${x.name} found in the history, the notice, the review or the worker log`);
  });

  it('drDrill refused by its preconditions (no target marked drillable): encoded failure, no stack secret in history, alert or log', async () => {
    const s3 = buildS3Client(cfg.s3);
    await clearAlertDedup(s3, cfg.s3.bucket);
    const before = new Set((await mailpitMessages()).map((m) => m.ID));
    const workflowId = `failsec-drill-${Date.now()}`;
    const h = await client.workflow.start('drDrill', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{}] });
    const f = await failureOf(h.result());
    assert.equal(f.type, 'DrillRefused');
    assert.match(f.message, /not marked drillable/);
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    for (const x of historyFailures(history.events)) assert.equal(x.message, 'Encoded failure', `a failure message is stored in plaintext: ${x.message}`);
    const { decoded, raw } = await historyTexts(client, cfg, workflowId);
    for (const secret of stackSecrets()) {
      assert.ok(!raw.includes(secret.value) && !decoded.some((d) => d.includes(secret.value)), `${secret.name} in the history`);
      assert.ok(!log.includes(secret.value), `${secret.name} in the worker log`);
    }
    const mail = await waitForMailNaming(workflowId, before);
    assert.ok(mail, 'no alert e-mail for the refused drill');
    assert.match(mail, /checkDrillPreconditions/);
    for (const secret of stackSecrets()) assert.ok(!mail.includes(secret.value), `${secret.name} in the alert e-mail`);
  });
});

// Emergency rotation's failure path: a rotation whose new secret-id stops working right after it
// was issued (destroyed by someone else) stops, alerts and leaves the old one in place; neither the
// old nor the new secret-id is in the history (decoded or raw), the result or the alert e-mail.
describe('failure path of an emergency rotation: no old or new credential in history, result or alert (real stack)', function () {
  this.timeout(120_000);
  it('a stopped approle-secret-id rotation alerts without either secret-id', async () => {
    const base = await ensureStack();
    const cfg = withQueue({ ...base, rotation: { ...base.rotation, tokenFile: await ensureRotatorToken() }, metrics: { listen: '' } }, uniqueQueue('failsec-rotate'));
    const client = await connectClient(cfg);
    try {
      await clearAlertDedup(buildS3Client(cfg.s3), cfg.s3.bucket);
      const role = `failsec-${crypto.randomBytes(4).toString('hex')}`;
      await bao('POST', `auth/approle/role/${role}`, { token_policies: ['default'] });
      const roleId = (await bao('GET', `auth/approle/role/${role}/role-id`)).json.data.role_id as string;
      const oldSecret = (await bao('POST', `auth/approle/role/${role}/secret-id`, {})).json.data.secret_id as string;
      await bao('POST', `secret/data/vault-dr/credentials/approle-secret-id/${role}`, { data: { role_id: roleId, secret_id: oldSecret } });
      let newSecret = '';
      const before = new Set((await mailpitMessages()).map((m) => m.ID));
      const workflowId = `failsec-rotate-${Date.now()}`;
      const result = (await withWorker(
        cfg,
        () => client.workflow.execute('rotateCredential', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ credentialClass: 'approle-secret-id', scope: role }] }),
        (a: Activities): Activities => ({
          ...a,
          issueNewCredential: async (req: Parameters<Activities['issueNewCredential']>[0]) => {
            const out = await a.issueNewCredential(req);
            newSecret = (await bao('GET', `secret/data/vault-dr/credentials/approle-secret-id/${role}`)).json.data.data.secret_id as string;
            const acc = (await bao('POST', `auth/approle/role/${role}/secret-id/lookup`, { secret_id: newSecret })).json.data.secret_id_accessor as string;
            await bao('POST', `auth/approle/role/${role}/secret-id-accessor/destroy`, { secret_id_accessor: acc });
            return out;
          },
        }),
      )) as { rotated: boolean; oldLeftInPlace: boolean };
      assert.equal(result.rotated, false);
      assert.equal(result.oldLeftInPlace, true);
      assert.ok(newSecret.length > 16 && newSecret !== oldSecret);
      const { decoded, raw } = await historyTexts(client, cfg, workflowId);
      const everything = decoded.join('\n') + raw + JSON.stringify(result);
      assert.ok(!everything.includes(oldSecret), 'the old secret-id is in the history or result');
      assert.ok(!everything.includes(newSecret), 'the new secret-id is in the history or result');
      const mail = await waitForMailNaming(workflowId, before, { timeoutMs: 60_000 });
      assert.ok(mail, 'no alert e-mail for the stopped rotation');
      assert.match(mail, /left in place/);
      assert.ok(!mail.includes(oldSecret) && !mail.includes(newSecret), 'the alert e-mail holds a secret-id');
    } finally {
      await client.connection.close();
    }
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
