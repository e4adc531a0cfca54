// backupVault against the real local stack (OpenBao raft, SeaweedFS S3, Mailpit, Temporal) with a
// real worker: the verified backup, custodian-share verification, secrets kept out of history,
// bad input, a sealed Vault, corrupt objects, an S3 outage, a SIGKILLed worker mid-upload,
// retention, and the daily schedule.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ScheduleOverlapPolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { backupObjectKeys, type BackupManifest, type BackupResult } from '../common/backup';
import { connectClient } from '../client/connect';
import { buildS3Client } from '../infra/clients';
import type { Config } from '../infra/config';
import { generateKeyPair } from '../infra/crypto/keys';
import { stackDir, startServer, stopServer, unsealBao } from '../stack/stack';
import { bao, clearAlertDedup, failureOf, historyTexts, vaultdr, listKeys, mailpitMessages, mailpitText, multipartUploads, stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('backupVault workflow (real stack)', function () {
  this.timeout(600_000);
  let cfg: Config;
  let client: Client;
  let s3: S3Client;
  let bucket: string;
  const appSecret = `app-db-password-${crypto.randomBytes(12).toString('hex')}`;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('backup'));
    client = await connectClient(cfg);
    s3 = buildS3Client(cfg.s3);
    bucket = cfg.s3.bucket;
    // A tenant secret that must be inside the snapshot and never in history.
    assert.equal((await bao('POST', 'secret/data/app/db', { data: { password: appSecret } })).status, 200);
  });
  after(async () => client?.connection.close());

  const run = (workflowId: string, input: unknown) => client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [input as never] });
  const manifestOf = async (id: string) => JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backupObjectKeys(id).manifest }))).Body!.transformToString()) as BackupManifest;

  let first: BackupResult;
  let firstWorkflowId: string;

  it('started with {} produces a verified, encrypted backup with manifest and canary', async () => {
    firstWorkflowId = `backup-ok-${Date.now()}`;
    first = (await withWorker(cfg, async () => (await run(firstWorkflowId, {})).result())) as BackupResult;
    assert.equal(first.status, 'verified');
    const m = await manifestOf(first.backupId);
    assert.equal(m.status, 'verified');
    assert.equal(m.object.sha256, first.objectSha256);
    assert.equal(m.workflowId, firstWorkflowId);
    assert.ok(m.snapshot.raftIndex > 0 && m.snapshot.openbaoVersion.length > 0);
    assert.equal(m.encryption.recipients.length, 2);
    // The stored object is ciphertext: the tenant secret is not in it.
    const obj = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: m.object.key }))).Body!.transformToByteArray());
    assert.equal(obj.length, m.object.bytes);
    assert.equal(crypto.createHash('sha256').update(obj).digest('hex'), m.object.sha256);
    assert.ok(!obj.includes(Buffer.from(appSecret)));
    // The canary in Vault names this backup (a restore must read it back).
    const canary = await bao('GET', 'secret/data/vault-dr/canary');
    assert.equal(canary.json.data.data.marker, m.canary.marker);
    assert.match(m.canary.marker, new RegExp(first.backupId));
  });

  it('verifies from the CLI with 3 of 5 custodian shares (decrypt + snapshot structure)', () => {
    const keys = path.join(stackDir(), 'keys');
    const r = vaultdr(['backup', 'verify', first.backupId, '--json', '--shares', path.join(keys, 'share-1-of-5.json'), path.join(keys, 'share-3-of-5.json'), path.join(keys, 'share-5-of-5.json')]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { status: string; raftIndex: number; checks: string[]; key: string };
    assert.equal(report.status, 'verified');
    assert.match(report.key, /rebuilt from 3 shares/);
    assert.ok(report.checks.some((c) => /raft snapshot structure valid/.test(c)));
    const two = vaultdr(['backup', 'verify', first.backupId, '--shares', path.join(keys, 'share-1-of-5.json'), path.join(keys, 'share-2-of-5.json')]);
    assert.equal(two.code, 1);
    assert.match(two.stderr, /need 3 distinct shares/);
  });

  it('keeps every secret value out of the workflow history', async () => {
    const { decoded, raw } = await historyTexts(client, cfg, firstWorkflowId);
    assert.ok(decoded.length >= 8, `expected many payloads, got ${decoded.length}`);
    const everything = decoded.join('\n') + raw;
    for (const s of [...stackSecrets(), { name: 'tenant KV value', value: appSecret }]) {
      assert.ok(!everything.includes(s.value), `${s.name} appears in workflow history`);
    }
    // What history does hold is useful to an operator: paths and ids.
    assert.ok(decoded.some((d) => d.includes(first.backupId)));
  });

  it('fails non-retryably naming the field for a wrong input type', async () => {
    const f = await withWorker(cfg, async () => failureOf((await run(`backup-bad-${Date.now()}`, { prune: 'yes' })).result()));
    assert.equal(f.type, 'InvalidInput');
    assert.equal(f.nonRetryable, true);
    assert.match(f.message, /field "prune": Expected boolean, received string/);
  });

  it('refuses a sealed OpenBao: clear failure, one de-duplicated alert, no retention', async () => {
    await clearAlertDedup(s3, bucket);
    const before = (await mailpitMessages()).length;
    assert.equal((await bao('PUT', 'sys/seal')).status, 204);
    try {
      const ids = [`backup-sealed-a-${Date.now()}`, `backup-sealed-b-${Date.now()}`];
      const failures = await withWorker(cfg, async () => {
        const out = [];
        for (const id of ids) out.push(await failureOf((await run(id, {})).result()));
        return out;
      });
      for (const f of failures) {
        assert.equal(f.type, 'VaultSealed');
        assert.match(f.message, /failed at writeCanary: .*sealed/);
      }
      for (const id of ids) {
        const { activityTypes } = await historyTexts(client, cfg, id);
        assert.ok(!activityTypes.includes('pruneBackups'), 'retention ran after a failed backup');
        assert.ok(!activityTypes.includes('snapshotToStore'));
        assert.ok(activityTypes.includes('sendAlert'));
      }
      const mails = (await mailpitMessages()).slice(0, (await mailpitMessages()).length - before);
      const alerts = mails.filter((m) => /failed at writeCanary/.test(m.Subject));
      assert.equal(alerts.length, 1, `expected one alert mail for two identical failures, got ${alerts.length}`);
      assert.match(alerts[0]!.Subject, /^\[vault-dr CRITICAL\] Vault backup \S+ failed at writeCanary/);
      const text = await mailpitText(alerts[0]!.ID);
      assert.match(text, /failed step: writeCanary/);
      assert.match(text, /error type: VaultSealed/);
      assert.match(text, new RegExp(`workflow: ${ids[0]}`));
    } finally {
      await unsealBao();
    }
  });

  it('names the object and the cause when a stored backup is flipped, truncated, or read with the wrong key', async () => {
    const r = (await withWorker(cfg, async () => (await run(`backup-corrupt-${Date.now()}`, { prune: false })).result())) as BackupResult;
    const m = await manifestOf(r.backupId);
    const original = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: m.object.key }))).Body!.transformToByteArray());
    // Point the manifest at the newest version so a re-put object is what verify reads.
    const unpinned = { ...m, object: { ...m.object, versionId: undefined } };
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: backupObjectKeys(r.backupId).manifest, Body: JSON.stringify(unpinned) }));
    const object = `s3://${bucket}/${m.object.key}`;
    try {
      const flipped = Buffer.from(original);
      flipped[flipped.length - 40] = flipped[flipped.length - 40]! ^ 0x01;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: m.object.key, Body: flipped }));
      let res = vaultdr(['backup', 'verify', r.backupId]);
      assert.equal(res.code, 1);
      assert.ok(res.stderr.includes(object), res.stderr);
      assert.match(res.stderr, /tampered: chunk \d+ does not authenticate/);

      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: m.object.key, Body: original.subarray(0, original.length - 100) }));
      res = vaultdr(['backup', 'verify', r.backupId]);
      assert.equal(res.code, 1);
      assert.ok(res.stderr.includes(object), res.stderr);
      assert.match(res.stderr, /truncated/);

      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: m.object.key, Body: original }));
      const stranger = generateKeyPair();
      const strangerFile = path.join(stackDir(), `stranger-${process.pid}.json`);
      fs.writeFileSync(strangerFile, JSON.stringify({ keyId: stranger.keyId, privateKey: stranger.privateKey.toString('base64') }), { mode: 0o600 });
      res = vaultdr(['backup', 'verify', r.backupId, '--validation-key', strangerFile]);
      fs.rmSync(strangerFile);
      assert.equal(res.code, 1);
      assert.ok(res.stderr.includes(object), res.stderr);
      assert.match(res.stderr, /wrong-key: wrong key: this backup is encrypted for x25519:\w+, x25519:\w+, not for x25519:\w+/);

      // Control: the restored original verifies again.
      res = vaultdr(['backup', 'verify', r.backupId]);
      assert.equal(res.code, 0, res.stderr);
    } finally {
      const keys = await listKeys(s3, bucket, `backups/${r.backupId}/`);
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    }
  });

  it('rides out an S3 outage: retries, then finishes verified', async () => {
    await stopServer('seaweedfs');
    let restarted: Promise<string> | undefined;
    try {
      const result = (await withWorker(cfg, async () => {
        const h = await run(`backup-s3down-${Date.now()}`, { prune: false });
        // The store stays down while the first steps fail and back off.
        await sleep(8000);
        restarted = startServer('seaweedfs');
        await restarted;
        return h.result();
      })) as BackupResult;
      assert.equal(result.status, 'verified');
      assert.equal((await manifestOf(result.backupId)).status, 'verified');
    } finally {
      if (!restarted) await startServer('seaweedfs');
    }
  });

  it('survives SIGKILL of the worker in the middle of a multipart upload: one verified backup, no orphaned upload', async () => {
    // Enough incompressible data that the snapshot spans more than one 5 MiB part.
    for (let i = 0; i < 90; i++) {
      const res = await bao('POST', `secret/data/bulk/item-${i}`, { data: { blob: crypto.randomBytes(75_000).toString('base64') } });
      assert.equal(res.status, 200);
    }
    const killCfgFile = path.join(stackDir(), `kill-test-${process.pid}.json`);
    const stackCfg = JSON.parse(fs.readFileSync(path.join(stackDir(), 'vaultdr.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    stackCfg.backup = { ...stackCfg.backup, partSize: 5 * 1024 * 1024, maxUploadBytesPerSecond: 1_000_000 };
    stackCfg.temporal = { ...stackCfg.temporal, taskQueue: cfg.temporal.taskQueue };
    stackCfg.codec = { ...stackCfg.codec, listen: '127.0.0.1:18090' };
    stackCfg.metrics = { listen: '' };
    fs.writeFileSync(killCfgFile, JSON.stringify(stackCfg));
    const childLog = path.join(stackDir(), `kill-test-${process.pid}.log`);
    const logFd = fs.openSync(childLog, 'w');
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js')], { env: { ...process.env, VAULTDR_CONFIG: killCfgFile }, stdio: ['ignore', logFd, logFd] });
    fs.closeSync(logFd);
    const workflowId = `backup-sigkill-${Date.now()}`;
    let h: WorkflowHandle;
    let prefix = '';
    try {
      h = await run(workflowId, { prune: false });
      const deadline = Date.now() + 120_000;
      // Kill once S3 holds at least one finished part of the multipart upload and more are to come.
      for (;;) {
        assert.ok(Date.now() < deadline, `upload never reached its first part; worker log:\n${fs.readFileSync(childLog, 'utf8').slice(-3000)}`);
        if (!prefix) prefix = `backups/${(await h.query<{ backupId: string }>('progress')).backupId}/`;
        const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
        const u = uploads.Uploads?.[0];
        if (u) {
          const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
          if ((parts.Parts ?? []).length >= 1) break;
        }
        assert.equal((await h.describe()).status.name, 'RUNNING', 'backup finished before the kill');
        await sleep(100);
      }
      child.kill('SIGKILL');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(killCfgFile, { force: true });
    }
    assert.ok((await multipartUploads(s3, bucket, prefix)).length >= 1, 'the killed worker should have left a multipart upload in flight');
    const result = (await withWorker(cfg, () => h.result())) as BackupResult;
    assert.equal(result.status, 'verified');
    assert.ok(result.objectBytes > 5 * 1024 * 1024, `snapshot too small to need multipart: ${result.objectBytes}`);
    assert.deepEqual((await listKeys(s3, bucket, prefix)).sort(), [`${prefix}manifest.json`, `${prefix}snapshot.vdrb`]);
    assert.deepEqual(await multipartUploads(s3, bucket, prefix), [], 'orphaned multipart upload left behind');
    const { activityTypes } = await historyTexts(client, cfg, workflowId);
    assert.equal(activityTypes.filter((t) => t === 'snapshotToStore').length, 1, 'one scheduled activity, retried by the server');
    const r = vaultdr(['backup', 'verify', result.backupId]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('prunes by 30-daily/12-monthly style retention after a verified backup, never unverified ones', async () => {
    // Synthetic older backups: five verified days and one unverified, January 2025.
    const seeded: string[] = [];
    const tiny = Buffer.from('placeholder');
    for (let day = 1; day <= 6; day++) {
      const id = `202501${String(day).padStart(2, '0')}T020000Z-${crypto.randomBytes(4).toString('hex')}`;
      const keys = backupObjectKeys(id);
      const source = await manifestOf(first.backupId);
      // A manifest describes its own backup (id and object), or listing treats it as a mismatch.
      const manifest = { ...source, backupId: id, object: { ...source.object, key: keys.snapshot, versionId: undefined }, status: day === 6 ? 'uploaded' : 'verified', createdAt: `2025-01-${String(day).padStart(2, '0')}T02:00:00.000Z` };
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.snapshot, Body: tiny }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.manifest, Body: JSON.stringify(manifest) }));
      seeded.push(id);
    }
    // A run may not prune below the configured floor; this bucket's test lowers it in the worker's configuration, the only place it can be lowered.
    const lowFloor = { ...cfg, backup: { ...cfg.backup, retention: { ...cfg.backup.retention, minDaily: 1, minMonthly: 0 } } };
    const result = (await withWorker(lowFloor, async () => (await run(`backup-prune-${Date.now()}`, { retention: { daily: 2, monthly: 1 } })).result())) as BackupResult;
    // Kept: the new backup (daily + monthly + newest) and Jan 5 (second daily). Jan 6 is unverified.
    for (const id of seeded.slice(0, 4)) assert.ok(result.pruned.includes(id), `${id} should be pruned`);
    assert.ok(!result.pruned.includes(seeded[4]!), 'second daily must be kept');
    assert.ok(!result.pruned.includes(seeded[5]!), 'unverified must never be pruned');
    assert.ok(result.unverifiedKept.includes(seeded[5]!));
    assert.ok(!result.pruned.includes(result.backupId));
    for (const id of seeded.slice(0, 4)) {
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: backupObjectKeys(id).snapshot })), (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 404);
    }
    const list = vaultdr(['backup', 'list', '--json']);
    const ids = (JSON.parse(list.stdout) as { backupId: string }[]).map((b) => b.backupId);
    assert.ok(ids.includes(result.backupId) && ids.includes(seeded[4]!) && ids.includes(seeded[5]!));
    // Leave no synthetic objects for later runs.
    const rest = [...(await listKeys(s3, bucket, `backups/${seeded[4]}/`)), ...(await listKeys(s3, bucket, `backups/${seeded[5]}/`))];
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: rest.map((Key) => ({ Key })) } }));
  });

  it('schedules the daily backup at 02:00 UTC, idempotently', async () => {
    const a = vaultdr(['schedules', 'apply', '--json']);
    assert.equal(a.code, 0, a.stderr);
    const b = vaultdr(['schedules', 'apply', '--json']);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(
      (JSON.parse(b.stdout) as { scheduleId: string; action: string }[]).find((x) => x.scheduleId === 'vault-dr-backup-daily'),
      { scheduleId: 'vault-dr-backup-daily', action: 'updated' },
    );
    const d = await client.schedule.getHandle('vault-dr-backup-daily').describe();
    assert.equal(d.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(d.action.type, 'startWorkflow');
    assert.equal(d.action.type === 'startWorkflow' ? d.action.workflowType : '', 'backupVault');
    const next = d.info.nextActionTimes.map((t) => t.toISOString());
    assert.ok(next.length > 0);
    for (const t of next) assert.match(t, /T02:00:00\.000Z$/);
  });
});
