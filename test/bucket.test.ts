// The backup bucket against the real SeaweedFS of the local stack, each test on a bucket of its
// own: `vaultdr bucket apply` (admin, idempotent, keeps other lifecycle rules), the nightly
// read-only checkBackupBucket (never writes, names what drifted), backups whose object was
// overwritten or whose pinned version was deleted (listed, never "latest", alerted, never pruned),
// legal holds on kept backups, and the configured retention floor.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  ListObjectVersionsCommand,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectLockConfigurationCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { BackupCatalog, ManifestCache } from '../infra/store/catalog';
import { restoreActivities } from '../activities/restore/restore';
import { backupIdFor, backupObjectKeys, type BackupManifest } from '../common/backup';
import { evaluate } from '../common/monitor';
import { applyBucket, bucketSpec, RULE_EXPIRE_DELETED } from '../infra/store/bucketPolicy';
import { buildS3Client } from '../infra/clients';
import type { Config } from '../infra/config';
import { loadDrState } from '../infra/store/drState';
import { stackDir } from '../stack/stack';
import { vaultdr } from './helpers/inspect';
import { ensureStack } from './helpers/stack';

const FOREIGN: LifecycleRule = { ID: 'ops-expire-tmp', Status: 'Enabled', Filter: { Prefix: 'tmp/' }, Expiration: { Days: 3 } };

function testBucket(tag: string): string {
  return `vdr-h4-${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/** The stack config pointed at its own bucket, with no default retention so the test can delete versions. */
function bucketCfg(cfg: Config, bucket: string): Config {
  return { ...cfg, s3: { ...cfg.s3, bucket }, backup: { ...cfg.backup, objectLockDays: 0 } };
}

async function lifecycleIds(s3: S3Client, bucket: string): Promise<string[]> {
  return ((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? []).map((r) => r.ID!).sort();
}

async function rejection(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, String(err));
  return err;
}

/** A verified backup as snapshotToStore + verifyUploadedBackup leave it: object version pinned by the manifest. */
async function putBackup(s3: S3Client, bucket: string, iso: string): Promise<{ id: string; versionId: string }> {
  const id = backupIdFor(iso, 'bucket-test', iso);
  const keys = backupObjectKeys(id);
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.snapshot, Body: `snapshot of ${id}` }));
  const manifest = {
    manifestVersion: 1,
    backupId: id,
    status: 'verified',
    workflowId: 'bucket-test',
    runId: iso,
    trigger: 'manual',
    createdAt: iso,
    uploadedAt: iso,
    verifiedAt: iso,
    snapshot: { clusterId: 'c', clusterName: 'c', openbaoVersion: '2', raftIndex: 1, raftTerm: 1, snapshotId: 's', node: 'n' },
    canary: { path: 'secret/data/vault-dr/canary', marker: `vault-dr backup ${id}` },
    plaintext: { bytes: 1, sha256: '0'.repeat(64) },
    object: { bucket, key: keys.snapshot, bytes: 1, sha256: '0'.repeat(64), versionId: put.VersionId },
    encryption: { format: 'vdrbak/1', chunkSize: 4096, recipients: [] },
  } satisfies BackupManifest;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.manifest, Body: JSON.stringify(manifest) }));
  return { id, versionId: put.VersionId! };
}

/**
 * Removes every version (lifting legal holds first), then the bucket: each SeaweedFS bucket is a
 * collection with volumes of its own, and the shared stack has only so many.
 */
async function dropBucket(s3: S3Client, bucket: string): Promise<void> {
  const res = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket })).catch(() => undefined);
  for (const v of [...(res?.Versions ?? []), ...(res?.DeleteMarkers ?? [])]) {
    await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId!, LegalHold: { Status: 'OFF' } })).catch(() => undefined);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId!, BypassGovernanceRetention: true })).catch(() => undefined);
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}

describe('backup bucket: apply with admin rights, check read-only (real SeaweedFS)', function () {
  this.timeout(120_000);
  let stackCfg: Config;
  let s3: S3Client;
  const made: string[] = [];

  before(async function () {
    this.timeout(300_000);
    stackCfg = await ensureStack();
    s3 = buildS3Client(stackCfg.s3);
  });
  after(async () => {
    for (const b of made) await dropBucket(s3, b);
  });

  it('`vaultdr bucket apply` creates a compliant bucket, is idempotent, and keeps lifecycle rules it does not own', async () => {
    const bucket = testBucket('apply');
    made.push(bucket);
    const env = { VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'), VAULTDR_S3_BUCKET: bucket };
    const first = vaultdr(['--json', 'bucket', 'apply'], env);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const r1 = JSON.parse(first.stdout) as { created: boolean; changed: string[]; check: { compliant: boolean; differences: string[] } };
    assert.ok(r1.created);
    assert.ok(r1.check.compliant, r1.check.differences.join('; '));
    assert.ok(r1.changed.some((c) => /object lock default retention GOVERNANCE 2 days/.test(c)), r1.changed.join(', '));

    // An operator's own rule, added out of band, survives a second apply.
    const rules = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [...rules, FOREIGN] } }));
    const second = vaultdr(['--json', 'bucket', 'apply'], env);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    const r2 = JSON.parse(second.stdout) as typeof r1;
    assert.deepEqual(r2.changed, [], 'a second apply on a compliant bucket changes nothing');
    assert.deepEqual(await lifecycleIds(s3, bucket), ['ops-expire-tmp', 'vault-dr-abort-incomplete-uploads', 'vault-dr-expire-deleted-backups']);

    // A drifted vault-dr rule is put back, the foreign rule still kept.
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [FOREIGN] } }));
    const third = JSON.parse(vaultdr(['--json', 'bucket', 'apply'], env).stdout) as typeof r1;
    assert.ok(third.check.compliant);
    assert.deepEqual(await lifecycleIds(s3, bucket), ['ops-expire-tmp', 'vault-dr-abort-incomplete-uploads', 'vault-dr-expire-deleted-backups']);

    // Without admin credentials the command refuses (the worker's own are not for this).
    const cfgNoAdmin = vaultdr(['bucket', 'apply'], { ...env, VAULTDR_S3_ADMIN_CREDENTIALS_FILE: '' });
    assert.notEqual(cfgNoAdmin.code, 0);
  });

  it('checkBackupBucket never writes bucket settings: a foreign rule survives, and drift fails naming each difference', async () => {
    const bucket = testBucket('check');
    made.push(bucket);
    const cfg = { ...stackCfg, s3: { ...stackCfg.s3, bucket } };
    await applyBucket(s3, bucketSpec(cfg));
    const acts = new BackupCatalog(s3, bucket);
    const ok = await acts.checkBucket(bucketSpec(cfg));
    assert.ok(ok.compliant);

    const rules = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [...rules, FOREIGN] } }));
    await acts.checkBucket(bucketSpec(cfg));
    assert.ok((await lifecycleIds(s3, bucket)).includes('ops-expire-tmp'), 'the nightly check removed a rule it does not own');

    // Drift: vault-dr's noncurrent rule shortened to 1 day and the default retention removed.
    const drifted = rules.map((r) => (r.ID === RULE_EXPIRE_DELETED ? { ...r, NoncurrentVersionExpiration: { NoncurrentDays: 1 } } : r));
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [...drifted, FOREIGN] } }));
    await s3.send(new PutObjectLockConfigurationCommand({ Bucket: bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } }));
    const f = await rejection(acts.checkBucket(bucketSpec(cfg)));
    assert.equal(f.type, 'BucketNotCompliant');
    assert.equal(f.nonRetryable, true);
    assert.match(f.message, /objectLock: default retention none, expected GOVERNANCE 2 days/);
    assert.match(f.message, /lifecycle: rule vault-dr-expire-deleted-backups is .*"noncurrentDays":1.*expected .*"noncurrentDays":30/);
    // ...and it left the drift as it was (read-only).
    const after = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
    assert.equal(after.find((r) => r.ID === RULE_EXPIRE_DELETED)?.NoncurrentVersionExpiration?.NoncurrentDays, 1);

    // The monitor's check sees the same drift; `bucket check` exits 3 naming it.
    const cli = vaultdr(['bucket', 'check'], { VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'), VAULTDR_S3_BUCKET: bucket });
    assert.equal(cli.code, 3, cli.stderr + cli.stdout);
    assert.match(cli.stdout, /differs: objectLock: default retention none/);
  });

  it('an overwritten backup object, then its pinned version deleted: listed, never "latest", alerted, never pruned', async () => {
    const bucket = testBucket('pin');
    made.push(bucket);
    const cfg = bucketCfg(stackCfg, bucket);
    await applyBucket(s3, bucketSpec(cfg));
    const acts = new BackupCatalog(s3, bucket);
    const older = await putBackup(s3, bucket, '2026-01-01T02:00:00.000Z');
    const newer = await putBackup(s3, bucket, '2026-01-02T02:00:00.000Z');
    assert.deepEqual((await acts.list()).map((b) => b.status), ['verified', 'verified'], 'control: both intact');

    // Something writes over the newest backup's key.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: backupObjectKeys(newer.id).snapshot, Body: 'not a backup' }));
    let list = await acts.list();
    const hit = list.find((b) => b.backupId === newer.id)!;
    assert.equal(hit.status, 'overwritten');
    assert.equal(hit.manifestStatus, 'verified');
    assert.match(hit.problem!, new RegExp(`not the pinned ${newer.versionId}`));

    const env = { VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'), VAULTDR_S3_BUCKET: bucket };
    const cli = vaultdr(['backup', 'list'], env);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`${newer.id}  overwritten[\\s\\S]*backup damaged: overwritten`));

    const selected = await restoreActivities({ s3, cfg }).selectBackup({ backupId: 'latest' });
    assert.equal(selected.backupId, older.id, '"latest" must skip the overwritten backup');

    const dr = await loadDrState(s3, cfg);
    const problems = evaluate({ vault: { reachable: true, initialized: true, sealed: false, standby: false, raftPeers: [], problems: [] } as never, autopilot: { unhealthyServers: [] }, dr }, { expectedRaftPeers: 1, backupMaxAgeHours: 1e6, validationMaxAgeDays: 90 }, Date.now() / 1000);
    const alert = problems.find((p) => p.key === 'BackupObjectOverwritten');
    assert.ok(alert, problems.map((p) => p.key).join(', '));
    assert.equal(alert.severity, 'critical');
    assert.match(alert.summary, new RegExp(newer.id));

    // The nightly prune keeps it, fails naming it, and holds the pinned version of the kept one.
    const f = await rejection(acts.prune({ justVerified: older.id }, cfg.backup.retention));
    assert.equal(f.type, 'BackupOverwritten');
    assert.match(f.message, new RegExp(`${newer.id} \\(overwritten`));
    assert.ok((await acts.list()).some((b) => b.backupId === newer.id), 'prune deleted a damaged backup');
    const hold = await s3.send(new GetObjectLegalHoldCommand({ Bucket: bucket, Key: backupObjectKeys(older.id).snapshot, VersionId: older.versionId }));
    assert.equal(hold.LegalHold?.Status, 'ON', 'the kept backup\'s pinned version must carry a legal hold');

    // Then the pinned (now noncurrent) version is deleted, as lifecycle expiry would.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: backupObjectKeys(newer.id).snapshot, VersionId: newer.versionId, BypassGovernanceRetention: true }));
    list = await acts.list();
    assert.equal(list.find((b) => b.backupId === newer.id)!.status, 'pinned version missing');
    assert.equal((await restoreActivities({ s3, cfg }).selectBackup({ backupId: 'latest' })).backupId, older.id);
    const f2 = await rejection(acts.prune({ justVerified: older.id }, cfg.backup.retention));
    assert.match(f2.message, new RegExp(`${newer.id} \\(pinned version ${newer.versionId} no longer exists`));
    const cli2 = vaultdr(['bucket', 'check'], env);
    assert.equal(cli2.code, 3);
    assert.match(cli2.stdout, new RegExp(`backup ${newer.id}: pinned version`));

    // Last, a plain DELETE of the key: its current version becomes a delete marker.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: backupObjectKeys(newer.id).snapshot }));
    list = await acts.list();
    const deleted = list.find((b) => b.backupId === newer.id)!;
    assert.equal(deleted.status, 'snapshot deleted');
    assert.match(deleted.problem!, new RegExp(`delete marker \\(pinned ${newer.versionId} is gone\\)`));
    assert.equal(list.find((b) => b.backupId === older.id)!.status, 'verified', 'the intact backup is untouched');
  });

  it('retention from workflow input cannot go below the configured floor; nothing is deleted', async () => {
    const bucket = testBucket('floor');
    made.push(bucket);
    const cfg = bucketCfg(stackCfg, bucket);
    await applyBucket(s3, bucketSpec(cfg));
    const acts = new BackupCatalog(s3, bucket);
    const ids: string[] = [];
    for (let d = 1; d <= 10; d++) ids.push((await putBackup(s3, bucket, `2026-02-${String(d).padStart(2, '0')}T02:00:00.000Z`)).id);
    const newest = ids.at(-1)!;

    const f = await rejection(acts.prune({ retention: { daily: 1, monthly: 0 }, justVerified: newest }, cfg.backup.retention));
    assert.equal(f.type, 'InvalidInput');
    assert.equal(f.nonRetryable, true);
    assert.match(f.message, /field "retention\.daily 1" is below the configured floor backup\.retention\.minDaily = 7; nothing was deleted/);
    assert.equal((await acts.list()).length, 10);
    const m = await rejection(acts.prune({ retention: { daily: 30, monthly: 1 }, justVerified: newest }, cfg.backup.retention));
    assert.match(m.message, /retention\.monthly 1" is below the configured floor backup\.retention\.minMonthly = 3/);

    // At the floor it runs; the floor is lowered only by configuration.
    const atFloor = await acts.prune({ retention: { daily: 7, monthly: 3 }, justVerified: newest }, cfg.backup.retention);
    assert.equal(atFloor.deleted.length, 3);
    const r = await acts.prune({ retention: { daily: 1, monthly: 0 }, justVerified: newest }, { ...cfg.backup.retention, minDaily: 1, minMonthly: 0 });
    assert.equal(r.deleted.length, 6);
  });
  it('/metrics manifest cache: a refresh reads only new or rewritten manifests, forgets pruned ones, stays bounded, and never hides damage', async () => {
    const bucket = testBucket('cache');
    made.push(bucket);
    const cfg = bucketCfg(stackCfg, bucket);
    await applyBucket(s3, bucketSpec(cfg));
    // A client of its own that counts manifest reads (GETs of backups/<id>/manifest.json).
    const counting = buildS3Client(stackCfg.s3);
    let manifestReads = 0;
    counting.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: string }).Key ?? '';
        if (context.commandName === 'GetObjectCommand' && key.endsWith('/manifest.json')) manifestReads++;
        return next(args);
      },
      { step: 'initialize', name: 'countManifestReads' },
    );
    const reads = async (f: () => Promise<unknown>) => {
      manifestReads = 0;
      await f();
      return manifestReads;
    };
    const a = await putBackup(s3, bucket, '2026-03-01T02:00:00.000Z');
    const b = await putBackup(s3, bucket, '2026-03-02T02:00:00.000Z');
    const c = await putBackup(s3, bucket, '2026-03-03T02:00:00.000Z');
    // One backup still "uploaded": its manifest will be rewritten by verification, so it is never cached.
    const u = await putBackup(s3, bucket, '2026-03-04T02:00:00.000Z');
    const uKey = backupObjectKeys(u.id).manifest;
    const uManifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: uKey }))).Body!.transformToString()) as BackupManifest;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: uKey, Body: JSON.stringify({ ...uManifest, status: 'uploaded', verifiedAt: undefined }) }));

    const cache = new ManifestCache();
    const catalog = new BackupCatalog(counting, bucket, cache);
    let first: Awaited<ReturnType<BackupCatalog['list']>> = [];
    assert.equal(await reads(async () => (first = await catalog.list())), 4, 'first listing reads every manifest');
    assert.equal(cache.size, 3, 'the three verified manifests are kept, the uploaded one is not');
    let second: typeof first = [];
    assert.equal(await reads(async () => (second = await catalog.list())), 1, 'second listing reads only the uploaded manifest');
    assert.deepEqual(second, first);
    assert.equal(await reads(() => loadDrState(counting, cfg, cache)), 1, 'the /metrics state loader uses the same cache');
    assert.equal(await reads(() => new BackupCatalog(counting, bucket).list()), 4, 'control: without a cache every manifest is read');

    // A verified manifest written again (here: tampered to claim another trigger) is read again, not served stale.
    const bKey = backupObjectKeys(b.id).manifest;
    const bManifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: bKey }))).Body!.transformToString()) as BackupManifest;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: bKey, Body: JSON.stringify({ ...bManifest, trigger: 'rewritten' }) }));
    let third: typeof first = [];
    assert.equal(await reads(async () => (third = await catalog.list())), 2, 'the rewritten and the uploaded manifest are read');
    assert.equal(third.find((x) => x.backupId === b.id)!.trigger, 'rewritten');

    // The object checks are never cached: an overwritten snapshot of a cached backup shows at once.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: backupObjectKeys(c.id).snapshot, Body: 'not a backup' }));
    assert.equal((await catalog.list()).find((x) => x.backupId === c.id)!.status, 'overwritten');

    // A deleted (pruned) backup is forgotten at the next listing.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: backupObjectKeys(a.id).manifest }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: backupObjectKeys(a.id).snapshot }));
    await catalog.list();
    assert.equal(cache.size, 2, 'the deleted backup left the cache');

    // Bounded: with room for one manifest, one is kept and listings stay right.
    const small = new ManifestCache(1);
    const bounded = new BackupCatalog(counting, bucket, small);
    const expected = await new BackupCatalog(s3, bucket).list();
    assert.deepEqual(await bounded.list(), expected);
    assert.equal(small.size, 1);
    assert.deepEqual(await bounded.list(), expected);
  });
});
