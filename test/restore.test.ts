// restoreVault against the real stack: a backup made by backupVault restored into a fresh staging
// OpenBao, canary and secrets read back, RTO/RPO recorded; a corrupt backup refused before any
// target is touched; a failed staging restore torn down with an alert; a worker SIGKILLed mid-
// restore; the offline runbook path (decrypt with custodian shares, plain `bao` restore); the
// weekly schedule; and no secret value in history.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { backupObjectKeys, type BackupManifest, type BackupResult } from '../common/backup';
import type { RestoreRecord } from '../common/restore';
import { connectClient } from '../client/connect';
import { buildS3Client } from '../infra/clients';
import type { Config } from '../infra/config';
import { readTokensFile } from '../infra/temporal/codecServer';
import { createShareIntakeServer } from '../infra/vault/shareIntake';
import { initKeys } from '../infra/crypto/escrow';
import { restartStaging, startStaging, stagingApi, stopStaging, unsealWithShares } from '../infra/vault/stagingVault';
import { stackDir } from '../stack/stack';
import { toolPaths } from '../stack/tools';
import { bao, clearAlertDedup, failureOf, historyTexts, vaultdr, vaultdrAsync, listKeys, mailpitMessages, stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A section of docs/runbooks/restore.md, from its heading to the next one given. */
function runbookSection(from: string, to: string): string {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'runbooks', 'restore.md'), 'utf8');
  const a = doc.indexOf(from);
  assert.ok(a >= 0, `restore.md has no "${from}"`);
  return doc.slice(a, doc.indexOf(to, a));
}

describe('restoreVault workflow (real stack)', function () {
  this.timeout(600_000);
  let cfg: Config;
  let client: Client;
  let s3: S3Client;
  let backup: BackupResult;
  let restoreWorkflowId: string;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('restore'));
    client = await connectClient(cfg);
    s3 = buildS3Client(cfg.s3);
    backup = (await withWorker(cfg, async () => (await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `restore-src-${Date.now()}`, args: [{ prune: false }] })).result())) as BackupResult;
  });
  after(async () => client?.connection.close());

  const restore = (workflowId: string, input: unknown, c: Config = cfg) => client.workflow.start('restoreVault', { taskQueue: c.temporal.taskQueue, workflowId, args: [input as never] });
  const manifestOf = async (id: string) => JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: backupObjectKeys(id).manifest }))).Body!.transformToString()) as BackupManifest;
  const stagingLeft = () => (fs.existsSync(cfg.restore.stagingDir!) ? fs.readdirSync(cfg.restore.stagingDir!) : []);

  it('restores a backupVault backup into a fresh staging OpenBao and reads the canary and secrets back', async () => {
    restoreWorkflowId = `restore-ok-${Date.now()}`;
    const r = (await withWorker(cfg, async () => (await restore(restoreWorkflowId, { backupId: backup.backupId })).result())) as RestoreRecord & { historyKey: string };
    assert.equal(r.status, 'verified');
    assert.equal(r.backupId, backup.backupId);
    const m = await manifestOf(backup.backupId);
    assert.equal(r.checks!.canary.expected, m.canary.marker);
    assert.equal(r.checks!.canary.found, m.canary.marker, 'the canary must name exactly this backup');
    assert.deepEqual(r.checks!.readable, cfg.restore.checkPaths);
    assert.deepEqual(r.checks!.unreadable, []);
    assert.equal(r.checks!.kv?.matches, true, JSON.stringify(r.checks!.kv));
    assert.ok(r.checks!.kv!.paths >= 2 && r.checks!.kv!.versions >= r.checks!.kv!.paths);
    assert.ok(r.rpoSeconds >= 0 && r.rtoSeconds! > 0 && r.rtoSeconds! < 600, JSON.stringify(r));
    assert.deepEqual(stagingLeft(), [], 'staging must be torn down');
    const stored = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: r.historyKey }))).Body!.transformToString()) as RestoreRecord;
    assert.equal(stored.rtoSeconds, r.rtoSeconds);
    const hist = vaultdr(['restore', 'history', '--json']);
    assert.equal(hist.code, 0, hist.stderr);
    assert.ok((JSON.parse(hist.stdout) as RestoreRecord[]).some((x) => x.restoreId === r.restoreId && x.status === 'verified'));
  });

  it('keeps secret values out of the restore history', async () => {
    const { decoded, raw } = await historyTexts(client, cfg, restoreWorkflowId);
    const appDb = (await bao('GET', 'secret/data/app/db')).json.data.data.password as string;
    const validator = fs.readFileSync(path.join(stackDir(), 'openbao', 'validator-secret-id'), 'utf8').trim();
    const everything = decoded.join('\n') + raw;
    for (const s of [...stackSecrets(), { name: 'tenant password', value: appDb }, { name: 'validator secret-id', value: validator }]) {
      assert.ok(!everything.includes(s.value), `${s.name} appears in restore history`);
    }
  });

  it('refuses a flipped, truncated or wrong-key backup before any target is touched, naming object and cause, and alerts', async () => {
    const b = (await withWorker(cfg, async () => (await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `restore-corrupt-src-${Date.now()}`, args: [{ prune: false }] })).result())) as BackupResult;
    const m = await manifestOf(b.backupId);
    const original = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: m.object.key }))).Body!.transformToByteArray());
    await s3.send(new PutObjectCommand({ Bucket: cfg.s3.bucket, Key: backupObjectKeys(b.backupId).manifest, Body: JSON.stringify({ ...m, object: { ...m.object, versionId: undefined } }) }));
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)] = flipped[Math.floor(flipped.length / 2)]! ^ 0x40;
    const strangerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-wrongkey-'));
    const strangerKey = path.join(strangerDir, 'validation.json');
    await initKeys({ outDir: path.join(strangerDir, 'k'), shares: 2, threshold: 2, validationKeyFile: strangerKey });
    const cases = [
      { name: 'flipped', body: flipped, cfg, cause: /tampered: chunk \d+ does not authenticate/ },
      { name: 'truncated', body: original.subarray(0, original.length - 1000), cfg, cause: /truncated/ },
      { name: 'wrong key', body: original, cfg: { ...cfg, backup: { ...cfg.backup, validationKeyFile: strangerKey } }, cause: /wrong-key: wrong key: this backup is encrypted for/ },
    ];
    try {
      for (const c of cases) {
        await s3.send(new PutObjectCommand({ Bucket: cfg.s3.bucket, Key: m.object.key, Body: c.body }));
        await clearAlertDedup(s3, cfg.s3.bucket);
        const before = (await mailpitMessages()).length;
        const workflowId = `restore-corrupt-${c.name.replace(' ', '-')}-${Date.now()}`;
        const f = await withWorker(c.cfg, async () => failureOf((await restore(workflowId, { backupId: b.backupId })).result()));
        assert.equal(f.type, 'BackupCorrupt', c.name);
        assert.ok(f.message.includes(`s3://${cfg.s3.bucket}/${m.object.key}`), f.message);
        assert.match(f.message, /failed at verifyBackupBeforeRestore: /);
        assert.match(f.message, c.cause);
        assert.match(f.message, /the target was not touched/);
        const { activityTypes } = await historyTexts(client, cfg, workflowId);
        assert.ok(!activityTypes.includes('startStagingVault') && !activityTypes.includes('restoreSnapshot'), `${c.name}: ${activityTypes.join()}`);
        const mails = (await mailpitMessages()).slice(0, (await mailpitMessages()).length - before);
        assert.ok(mails.some((x) => x.Subject.includes('failed at verifyBackupBeforeRestore')), `${c.name}: ${mails.map((x) => x.Subject).join('\n')}`);
      }
    } finally {
      fs.rmSync(strangerDir, { recursive: true, force: true });
      const keys = await listKeys(s3, cfg.s3.bucket, `backups/${b.backupId}/`);
      await s3.send(new DeleteObjectsCommand({ Bucket: cfg.s3.bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    }
  });

  it('vaultdr restore validate runs the weekly validation now and waits for its result', async () => {
    // The CLI uses the stack's own task queue; a worker serves it for the duration of the test.
    const stackQueue = withQueue(cfg, (await ensureStack()).temporal.taskQueue);
    const r = await withWorker(stackQueue, () => vaultdrAsync(['restore', 'validate', '--json']));
    assert.equal(r.code, 0, r.stderr);
    const rec = JSON.parse(r.stdout) as RestoreRecord;
    assert.equal(rec.status, 'verified');
    assert.equal(rec.reason, 'validation (manual)');
    assert.equal(rec.checks!.canary.matches, true);
  });

  it('reports what differs when the restored KV inventory does not match the manifest', async () => {
    const b = (await withWorker(cfg, async () => (await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `restore-kv-src-${Date.now()}`, args: [{ prune: false }] })).result())) as BackupResult;
    const m = await manifestOf(b.backupId);
    assert.ok(m.kv && m.kv.pathsBefore > 0, JSON.stringify(m.kv));
    // Pretend the backup held five more secrets than any restore of it can show.
    const inflated = { ...m, kv: { ...m.kv!, pathsBefore: m.kv!.pathsBefore + 5, pathsAfter: m.kv!.pathsAfter + 5 } };
    await s3.send(new PutObjectCommand({ Bucket: cfg.s3.bucket, Key: backupObjectKeys(b.backupId).manifest, Body: JSON.stringify(inflated) }));
    try {
      const f = await withWorker(cfg, async () => failureOf((await restore(`restore-kv-${Date.now()}`, { backupId: b.backupId })).result()));
      assert.equal(f.type, 'VerificationFailed');
      assert.match(f.message, new RegExp(`KV secret: ${m.kv!.pathsAfter} paths / \\d+ versions restored, manifest says ${m.kv!.pathsBefore + 5}(–${m.kv!.pathsAfter + 5})? paths`));
      assert.deepEqual(stagingLeft(), []);
    } finally {
      const keys = await listKeys(s3, cfg.s3.bucket, `backups/${b.backupId}/`);
      await s3.send(new DeleteObjectsCommand({ Bucket: cfg.s3.bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    }
  });

  it('tears staging down and alerts when the staging restore fails (unseal shares of another cluster)', async () => {
    const wrong = path.join(os.tmpdir(), `wrong-shares-${process.pid}.json`);
    fs.writeFileSync(wrong, JSON.stringify({ keys_base64: [1, 2, 3, 4, 5].map(() => crypto.randomBytes(33).toString('base64')) }), { mode: 0o600 });
    const badCfg: Config = { ...cfg, restore: { ...cfg.restore, unsealSharesFile: wrong } };
    await clearAlertDedup(s3, cfg.s3.bucket);
    const before = (await mailpitMessages()).length;
    const workflowId = `restore-badshares-${Date.now()}`;
    try {
      const f = await withWorker(badCfg, async () => failureOf((await restore(workflowId, { backupId: backup.backupId }, badCfg)).result()));
      assert.equal(f.type, 'UnsealFailed');
      assert.match(f.message, /failed at unsealTarget/);
      const { activityTypes } = await historyTexts(client, cfg, workflowId);
      assert.ok(activityTypes.includes('teardownStaging'));
      assert.deepEqual(stagingLeft(), [], 'staging must be torn down after a failure');
      const mails = (await mailpitMessages()).slice(0, (await mailpitMessages()).length - before);
      assert.ok(mails.some((x) => x.Subject.includes('failed at unsealTarget')), mails.map((x) => x.Subject).join('\n'));
      // A failure path too: its message, record and alert keep secret values out of history.
      const { decoded, raw } = await historyTexts(client, cfg, workflowId);
      const shares = (JSON.parse(fs.readFileSync(wrong, 'utf8')) as { keys_base64: string[] }).keys_base64;
      for (const s of [...stackSecrets(), ...shares.map((value, i) => ({ name: `wrong share ${i}`, value }))]) {
        assert.ok(!(decoded.join('\n') + raw).includes(s.value), `${s.name} appears in the failed restore's history`);
      }
    } finally {
      fs.rmSync(wrong, { force: true });
    }
  });

  it('resumes and finishes when the worker is SIGKILLed during the restore', async () => {
    const killCfgFile = path.join(stackDir(), `restore-kill-${process.pid}.json`);
    const stackCfg = JSON.parse(fs.readFileSync(path.join(stackDir(), 'vaultdr.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    stackCfg.temporal = { ...stackCfg.temporal, taskQueue: cfg.temporal.taskQueue };
    stackCfg.codec = { ...stackCfg.codec, listen: '127.0.0.1:18091' };
    stackCfg.metrics = { listen: '' };
    fs.writeFileSync(killCfgFile, JSON.stringify(stackCfg));
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js')], { env: { ...process.env, VAULTDR_CONFIG: killCfgFile }, stdio: 'ignore' });
    const workflowId = `restore-kill-${Date.now()}`;
    const h = await restore(workflowId, { backupId: backup.backupId });
    try {
      const deadline = Date.now() + 120_000;
      for (;;) {
        assert.ok(Date.now() < deadline, 'restore never reached restoreSnapshot');
        const p = await h.query<{ step: string }>('progress').catch(() => ({ step: '' }));
        if (p.step === 'restoreSnapshot') break;
        await sleep(50);
      }
      child.kill('SIGKILL');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(killCfgFile, { force: true });
    }
    const r = (await withWorker(cfg, () => h.result())) as RestoreRecord;
    assert.equal(r.status, 'verified');
    assert.equal(r.checks!.canary.matches, true);
    assert.deepEqual(stagingLeft(), []);
  });

  it('production: shows the plan, never touches the target before approval, refuses an older snapshot unless allowed, waits for a human to unseal', async () => {
    // The "production" cluster here is an independent OpenBao with more raft history than the backup.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-prod-'));
    const target = await startStaging({ root, stagingId: 'prod-target', baoBinary: toolPaths().bao });
    const targetToken = (JSON.parse(fs.readFileSync(path.join(target.dir, 'init.json'), 'utf8')) as { root_token: string }).root_token;
    const tokenFile = path.join(root, 'target-token');
    fs.writeFileSync(tokenFile, targetToken, { mode: 0o600 });
    const prodCfg: Config = { ...cfg, restore: { ...cfg.restore, productionAddress: target.address, productionTokenFile: tokenFile } };
    const backupIndex = (await manifestOf(backup.backupId)).snapshot.raftIndex;
    const targetIndex = async () => Number((await stagingApi(target.address, 'GET', 'sys/leader')).json.raft_committed_index);
    for (let i = 0; (await targetIndex()) <= backupIndex + 5; i++) {
      await stagingApi(target.address, 'PUT', `sys/policies/acl/filler-${i % 50}`, targetToken, { policy: `path "x/${i}" { capabilities = ["read"] }` });
    }
    await stagingApi(target.address, 'PUT', 'sys/policies/acl/before-restore', targetToken, { policy: 'path "y" { capabilities = ["read"] }' });
    const untouched = async () => (await stagingApi(target.address, 'GET', 'sys/policies/acl/before-restore', targetToken)).status === 200;
    const waitStep = async (h: { query: <T>(q: string) => Promise<T> }, step: string) => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const p = await h.query<{ step: string; plan?: { older: boolean; targetRaftIndex: number; backupRaftIndex: number; sameCluster: boolean }; waitingFor?: string; error?: string }>('progress');
        if (p.step === step) return p;
        assert.notEqual(p.step, 'failed', p.error);
        assert.ok(Date.now() < deadline, `never reached ${step} (at ${p.step})`);
        await sleep(250);
      }
    };
    try {
      await withWorker(prodCfg, async () => {
        // 1. Refused: the target stays as it was.
        const refused = await restore(`restore-prod-refused-${Date.now()}`, { backupId: backup.backupId, target: 'production', requestedBy: 'oncall-a' }, prodCfg);
        const plan = (await waitStep(refused, 'awaitApproval')).plan!;
        assert.equal(plan.older, true);
        assert.equal(plan.sameCluster, false);
        assert.ok(plan.targetRaftIndex > plan.backupRaftIndex);
        // The responder's view: the plan from the CLI, then a refusal from the CLI.
        const status = await vaultdrAsync(['restore', 'status', refused.workflowId, '--json']);
        assert.equal(status.code, 0, status.stderr);
        assert.equal((JSON.parse(status.stdout) as { plan: { older: boolean } }).plan.older, true);
        const human = await vaultdrAsync(['restore', 'status', refused.workflowId]);
        assert.match(human.stdout, /replaces ANOTHER cluster with OLDER data/);
        const refusal = await vaultdrAsync(['restore', 'approve', refused.workflowId, '--who', 'oncall-b', '--why', 'wrong backup', '--refuse']);
        assert.equal(refusal.code, 0, refusal.stderr);
        assert.match(refusal.stdout, /refused — the target stays untouched/);
        const f = await failureOf(refused.result());
        assert.equal(f.type, 'RestoreRefused');
        assert.match(f.message, /failed at awaitApproval: refused by oncall-b: wrong backup; the target was not touched/);
        assert.ok(await untouched(), 'a refused restore touched the target');

        // 2. Approved, after two rejected attempts at approving.
        const h = await restore(`restore-prod-${Date.now()}`, { backupId: backup.backupId, target: 'production', reason: 'test: rebuild', requestedBy: 'oncall-b' }, prodCfg);
        await waitStep(h, 'awaitApproval');
        await sleep(1500);
        assert.ok(await untouched(), 'the target was touched before approval');
        await assert.rejects(h.executeUpdate('approveRestore', { args: [{ approve: true, who: '', why: 'x' }] }), (e: Error) => /field "who": say who decides/.test(String((e.cause as Error | undefined)?.message ?? e.message)));
        const tooOld = await vaultdrAsync(['restore', 'approve', h.workflowId, '--who', 'oncall-a', '--why', 'rebuild after disk loss']);
        assert.equal(tooOld.code, 1);
        assert.match(tooOld.stderr, /not accepted: .*is older than the data on .*allowOlderSnapshot: true/);
        assert.ok(await untouched());
        const self = await vaultdrAsync(['restore', 'approve', h.workflowId, '--who', 'OnCall-B', '--why', 'mine', '--allow-older']);
        assert.equal(self.code, 1);
        assert.match(self.stderr, /not accepted: .*started this restore \(requestedBy\); a production restore needs a second person/);
        await h.executeUpdate('approveRestore', { args: [{ approve: true, who: 'oncall-a', why: 'rebuild after disk loss', allowOlderSnapshot: true }] });

        // 3. The restored cluster seals itself; the responder restarts and unseals it.
        await waitStep(h, 'awaitTargetUnsealed');
        let waiting = '';
        for (const until = Date.now() + 60_000; !/ is sealed/.test(waiting) && Date.now() < until; await sleep(250)) {
          waiting = (await h.query<{ waitingFor?: string }>('progress')).waitingFor ?? '';
        }
        assert.match(waiting, /(is sealed|should seal itself); restart the server if it is sealed, then unseal/, JSON.stringify(await h.query('progress')));
        const restarted = await restartStaging(target);
        const shares = (JSON.parse(fs.readFileSync(path.join(stackDir(), 'openbao', 'init.json'), 'utf8')) as { keys_base64: string[] }).keys_base64;
        await unsealWithShares(restarted.address, shares.slice(0, 3));
        const r = (await h.result()) as RestoreRecord;
        assert.equal(r.status, 'verified');
        assert.equal(r.target, 'production');
        assert.equal(r.checks!.canary.matches, true);
        assert.equal(r.approval!.who, 'oncall-a');
        assert.equal(r.requestedBy, 'oncall-b', 'both people of the two-person rule are recorded');
        assert.equal(await untouched(), false, 'the target data should now be the backup\'s');
      });
    } finally {
      await stopStaging(root, 'prod-target');
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('decrypts with the escrow key rebuilt from custodian shares handed to the worker directly, never through Temporal', async () => {
    const keys = path.join(stackDir(), 'keys');
    const stranger = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-stranger-'));
    await initKeys({ outDir: path.join(stranger, 'k'), shares: 3, threshold: 2 });
    const workflowId = `restore-shares-${Date.now()}`;
    const endpoint = 'http://127.0.0.1:18092';
    const submit = (file: string) => vaultdrAsync(['keys', 'submit-share', workflowId, file, '--endpoint', endpoint]);
    try {
      const r = (await withWorker(cfg, async ({ intake }) => {
        const server = createShareIntakeServer({ intake: intake!, tokens: readTokensFile(cfg.restore.shareIntakeTokensFile) });
        await new Promise<void>((res) => server.listen(18092, '127.0.0.1', res));
        try {
          const h = await restore(workflowId, { backupId: backup.backupId, keySource: 'custodian-shares' });
          for (let p = await h.query<{ step: string }>('progress'); p.step !== 'awaitCustodianShares'; p = await h.query<{ step: string }>('progress')) await sleep(200);
          const wrong = await submit(path.join(stranger, 'k', 'share-1-of-3.json'));
          assert.equal(wrong.code, 1);
          assert.match(wrong.stderr, /not accepted: this share belongs to key x25519:\w+; the backup is encrypted for/);
          const two = [await submit(path.join(keys, 'share-1-of-5.json')), await submit(path.join(keys, 'share-4-of-5.json'))];
          assert.equal(two[1]!.code, 0, two[1]!.stderr);
          assert.match(two[1]!.stdout, /2 share\(s\) of 3 received/);
          await sleep(1000);
          assert.equal((await h.query<{ step: string }>('progress')).step, 'awaitCustodianShares', 'must wait for the threshold');
          const third = await submit(path.join(keys, 'share-5-of-5.json'));
          assert.match(third.stdout, /threshold reached/);
          return (await h.result()) as RestoreRecord;
        } finally {
          server.close();
        }
      })) as RestoreRecord;
      assert.equal(r.status, 'verified');
      assert.equal(r.checks!.canary.matches, true);
      const { decoded, raw, activityTypes } = await historyTexts(client, cfg, workflowId);
      assert.ok(activityTypes.includes('closeShareIntake'));
      const everything = decoded.join('\n') + raw;
      for (const s of stackSecrets()) assert.ok(!everything.includes(s.value), `${s.name} appears in history`);
    } finally {
      fs.rmSync(stranger, { recursive: true, force: true });
    }
  });

  it('follows the offline runbook: decrypt with 3 custodian shares, no Temporal, restore with plain bao, unseal, generate a root token from the unseal shares, read the canary', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-offline-'));
    const m = await manifestOf(backup.backupId);
    fs.writeFileSync(path.join(work, 'manifest.json'), JSON.stringify(m));
    fs.writeFileSync(path.join(work, 'snapshot.vdrb'), Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: m.object.key, VersionId: m.object.versionId }))).Body!.transformToByteArray()));
    const keys = path.join(stackDir(), 'keys');
    const out = path.join(work, 'snapshot.snap');
    // No config, no Temporal: only files.
    const r = vaultdr(
      ['backup', 'decrypt', backup.backupId, '--offline', '--object', path.join(work, 'snapshot.vdrb'), '--manifest', path.join(work, 'manifest.json'), '--out', out, '--shares', path.join(keys, 'share-2-of-5.json'), path.join(keys, 'share-4-of-5.json'), path.join(keys, 'share-5-of-5.json')],
      { VAULTDR_TEMPORAL_ADDRESS: '127.0.0.1:1' },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((fs.statSync(out).mode & 0o777).toString(8), '600');
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex'), m.plaintext.sha256);

    const stagingId = `offline-${process.pid}`;
    const root = path.join(work, 'staging');
    const staging = await startStaging({ root, stagingId, baoBinary: toolPaths().bao });
    try {
      const token = (JSON.parse(fs.readFileSync(path.join(staging.dir, 'init.json'), 'utf8')) as { root_token: string }).root_token;
      const restored = spawnSync(toolPaths().bao, ['operator', 'raft', 'snapshot', 'restore', '-force', out], { env: { PATH: process.env.PATH, BAO_ADDR: staging.address, BAO_TOKEN: token }, encoding: 'utf8' });
      assert.equal(restored.status, 0, restored.stderr);
      // Step 8 of the runbook, exactly as written there: its listener line, then its shell blocks.
      const step8 = runbookSection('### 8. Verify', '### 9.');
      const listenerLine = /```hcl\n([^\n]+)\n```/.exec(step8)![1]!;
      const [ceremony, verify] = [...step8.matchAll(/```sh\n([\s\S]*?)```/g)].map((b) => b[1]!);
      assert.ok(ceremony && verify, 'step 8 must have the root-token block and the verify block');
      // "add the line before the restart of step 6": into the target's listener "tcp" stanza.
      const hcl = path.join(staging.dir, 'staging.hcl');
      fs.writeFileSync(hcl, fs.readFileSync(hcl, 'utf8').replace(/listener "tcp" \{\n/, (l) => `${l}${listenerLine}\n`));
      const again = await restartStaging(staging);
      const shares = (JSON.parse(fs.readFileSync(path.join(stackDir(), 'openbao', 'init.json'), 'utf8')) as { keys_base64: string[] }).keys_base64;
      assert.equal(await unsealWithShares(again.address, shares.slice(2)), 3);
      // No token from anywhere: BAO_TOKEN unset; three key holders type their shares at the prompt.
      const run = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', `${ceremony}\n${verify}\nbao token revoke -self`], {
        cwd: work,
        input: shares.slice(0, 3).join('\n') + '\n',
        env: { PATH: `${path.dirname(toolPaths().bao)}:${path.dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME, BAO_ADDR: again.address },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(run.status, 0, `step 8 failed: ${run.stderr}`);
      // `bao kv get -field=marker` and `jq -r .canary.marker manifest.json`: the same marker twice.
      assert.equal(run.stdout.split(m.canary.marker).length - 1, 2, run.stdout);
      for (const share of shares) assert.ok(!run.stdout.includes(share) && !run.stderr.includes(share), 'a share was echoed');
      // The generated token was revoked at the end, as the runbook says.
      assert.match(run.stdout, /Success! Revoked token/);
    } finally {
      await stopStaging(root, stagingId);
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  it('schedules the weekly restore validation on Sundays at 03:00 UTC', async () => {
    const a = vaultdr(['schedules', 'apply', '--json']);
    assert.equal(a.code, 0, a.stderr);
    const d = await client.schedule.getHandle('vault-dr-restore-validation-weekly').describe();
    assert.equal(d.action.type === 'startWorkflow' ? d.action.workflowType : '', 'restoreVault');
    // The loop below proves nothing over an empty list (a paused schedule has no next times).
    const next = d.info.nextActionTimes;
    assert.ok(next.length >= 2, `expected upcoming runs, got ${next.length}`);
    assert.equal(d.state.paused, false);
    for (const t of next) {
      assert.equal(t.getUTCDay(), 0);
      assert.equal(t.toISOString().slice(11), '03:00:00.000Z');
    }
    // Weekly: consecutive runs exactly 7 days apart.
    for (let i = 1; i < next.length; i++) assert.equal(next[i]!.getTime() - next[i - 1]!.getTime(), 7 * 86_400_000);
  });

  it('fails non-retryably naming the field for a bad backup id', async () => {
    const f = await withWorker(cfg, async () => failureOf((await restore(`restore-bad-${Date.now()}`, { backupId: '../etc/passwd' })).result()));
    assert.equal(f.type, 'InvalidInput');
    assert.match(f.message, /field "backupId"/);
  });
});
