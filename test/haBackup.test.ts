// The product on the HA cluster (three OpenBao nodes behind HAProxy, npm run ha:up), real worker:
// - backupVault with vault.address = HAProxy snapshots the active node and verifies the backup;
// - pointed straight at a standby it fails with VaultStandby on the first attempt (no minutes of
//   retries), naming the active node;
// - the health check through HAProxy reports every node, the leader and autopilot; pointed at a
//   standby it reports the standby as a problem instead of calling the setup healthy.
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { BackupResult } from '../common/backup';
import type { HealthReport } from '../common/health';
import type { Config } from '../infra/config';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haUp } from '../stack/ha/index';
import { harnessVaultEnv, nodeAddr, nodeNamed, workerRoleIdFile, workerSecretIdFile } from '../stack/ha/vault';
import { failureOf } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

describe('backupVault and the health check on the HA cluster (real worker)', function () {
  this.timeout(300_000);
  let base: Config;
  let client: Client;
  const at = (address: string): Config => ({ ...base, vault: { ...base.vault, address, roleIdFile: workerRoleIdFile(), secretIdFile: workerSecretIdFile(), tokenFile: undefined } });

  before(async () => {
    base = withQueue(await ensureStack(), uniqueQueue('ha-backup'));
    await haUp();
    client = await connectClient(base);
  });
  after(async () => client?.connection.close());

  it('through HAProxy: snapshots the active node and verifies; the health check sees three nodes and the leader', async () => {
    const cfg = at(HAPROXY_VAULT_ADDR);
    const leader = (await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).leader!;
    const { backup, health } = await withWorker(cfg, async () => {
      const b = await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `ha-backup-${Date.now()}`, args: [{ prune: false }] });
      const h = await client.workflow.start('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId: `ha-health-${Date.now()}`, args: [{ checks: ['vault'], expectedRaftPeers: 3 }] });
      return { backup: (await b.result()) as BackupResult, health: (await h.result()) as HealthReport };
    });
    assert.equal(backup.status, 'verified');
    assert.ok(backup.raftIndex > 0);
    assert.equal(health.vault?.status, 'healthy', JSON.stringify(health.vault));
    assert.equal(health.vault?.standby, false);
    assert.deepEqual(health.vault?.nodes?.map((n) => n.nodeId).sort(), ['bao-1', 'bao-2', 'bao-3']);
    assert.ok(health.vault?.nodes?.every((n) => n.healthy));
    assert.equal(health.vault?.nodes?.find((n) => n.status === 'leader')?.nodeId, leader);
    assert.deepEqual(health.vault?.autopilot, { healthy: true, failureTolerance: 1, leader });
  });

  it('pointed at a standby: the backup fails with VaultStandby on its first attempt, and the health check says so', async () => {
    const leader = (await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).leader!;
    const standby = ['bao-1', 'bao-2', 'bao-3'].find((n) => n !== leader)!;
    const addr = nodeAddr(nodeNamed(standby));
    const cfg = at(addr);
    const { failure, attempts, health } = await withWorker(cfg, async () => {
      const b = await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `ha-backup-standby-${Date.now()}`, args: [{ prune: false }] });
      const failure = await failureOf(b.result());
      const history = await b.fetchHistory();
      const scheduled = (history.events ?? []).find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'snapshotToStore');
      const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduled?.eventId));
      const h = await client.workflow.start('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId: `ha-health-standby-${Date.now()}`, args: [{ checks: ['vault'], expectedRaftPeers: 3 }] });
      return { failure, attempts: started.map((e) => e.activityTaskStartedEventAttributes!.attempt), health: (await h.result()) as HealthReport };
    });
    assert.equal(failure.type, 'VaultStandby');
    assert.match(failure.message, new RegExp(`failed at snapshotToStore: OpenBao at ${addr.replace(/[.]/g, '\\.')} is a standby .*the active node is http://127\\.0\\.0\\.1:\\d+: no snapshot taken`));
    // One attempt: not retried for minutes like a transient failure.
    assert.deepEqual(attempts, [1]);
    assert.equal(health.vault?.status, 'unhealthy');
    assert.match(health.vault!.problems.join('; '), new RegExp(`OpenBao at ${addr.replace(/[.]/g, '\\.')} is a standby \\(active node http://127\\.0\\.0\\.1:\\d+\\): backups are refused from a standby`));
  });
});
