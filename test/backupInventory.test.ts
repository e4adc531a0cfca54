// The KV inventory a backup records around its snapshot, on a throwaway OpenBao of its own (so no
// other test's writes land on it) with the worker's AppRole and policy: on a quiet cluster the
// count before the snapshot is proven exact by the raft index (unchanged from before that count to
// the snapshot's own index) and the second pass is skipped; with writes going on, both passes run
// and the manifest keeps the range a restore validation checks.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeleteBucketCommand, DeleteObjectCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { backupActivities } from '../activities/backup/backup';
import { type BackupManifest } from '../common/backup';
import { buildClients } from '../infra/clients';
import type { Config } from '../infra/config';
import { applyBucket, bucketSpec } from '../infra/store/bucketPolicy';
import { BackupCatalog } from '../infra/store/catalog';
import { toolPaths } from '../stack/tools';
import { populate, startBenchVault, type BenchVault } from '../bench/benchVault';
import { ensureStack } from './helpers/stack';

describe('backup KV inventory around the snapshot (throwaway OpenBao)', function () {
  this.timeout(180_000);
  let vault: BenchVault;
  let cfg: Config;
  let s3: S3Client;
  let workDir: string;
  const bucket = `vdr-inv-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

  before(async function () {
    this.timeout(300_000);
    const stack = await ensureStack();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdr-inv-'));
    vault = await startBenchVault({ workDir, baoBinary: toolPaths().bao });
    await populate(vault, 0, 60, 8);
    cfg = {
      ...stack,
      vault: { ...stack.vault, address: vault.address, roleIdFile: vault.roleIdFile, secretIdFile: vault.secretIdFile },
      s3: { ...stack.s3, bucket },
      backup: { ...stack.backup, objectLockDays: 0 },
    };
    s3 = buildClients(cfg).s3;
    await applyBucket(s3, bucketSpec(cfg));
  });
  after(async () => {
    await vault?.stop().catch(() => undefined);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    const res = await s3?.send(new ListObjectVersionsCommand({ Bucket: bucket })).catch(() => undefined);
    for (const v of [...(res?.Versions ?? []), ...(res?.DeleteMarkers ?? [])]) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId!, BypassGovernanceRetention: true })).catch(() => undefined);
    await s3?.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  });

  const backup = async (backupId: string): Promise<BackupManifest> => {
    const acts = backupActivities({ bao: buildClients(cfg).bao, s3, cfg });
    await new MockActivityEnvironment({ activityType: 'snapshotToStore' }).run(acts.snapshotToStore, { backupId, workflowId: 'inventory-test', runId: backupId, trigger: 'manual', createdAt: new Date().toISOString(), canary: { path: 'secret/data/vault-dr/canary', marker: backupId } });
    return (await new BackupCatalog(s3, bucket).manifest(backupId))!;
  };

  it('quiet cluster: one count, proven to be the snapshot\'s own by the raft index', async () => {
    const m = await backup(`20260301T020000Z-quiet${Date.now().toString(36)}`);
    assert.ok(m.kv, 'manifest has a KV inventory');
    assert.equal(m.kv.exactAtRaftIndex, m.snapshot.raftIndex, JSON.stringify(m.kv));
    assert.equal(m.kv.pathsBefore, 60);
    assert.deepEqual([m.kv.pathsAfter, m.kv.versionsAfter, m.kv.versionsBefore], [60, 60, 60]);
  });

  it('writes going on: the count after the snapshot runs too, and the range holds the snapshot', async () => {
    // Writers add secrets the whole time the backup runs: the raft index moves under the first count.
    let stop = false;
    let next = 1000;
    const writers = Array.from({ length: 4 }, async () => {
      while (!stop) await populate(vault, next, ++next, 1);
    });
    let m: BackupManifest;
    try {
      await new Promise((r) => setTimeout(r, 100));
      m = await backup(`20260301T020000Z-busy${Date.now().toString(36)}`);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    assert.ok(m.kv, 'manifest has a KV inventory');
    assert.equal(m.kv.exactAtRaftIndex, undefined, `a count with writes going on is not exact: ${JSON.stringify(m.kv)}`);
    assert.ok(m.kv.pathsBefore > 60 && m.kv.pathsAfter > m.kv.pathsBefore, `both passes ran and saw the writes: ${JSON.stringify(m.kv)}`);
    assert.ok(m.kv.versionsAfter >= m.kv.versionsBefore);
  });
});
