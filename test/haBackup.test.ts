// The product on the HA cluster (three OpenBao nodes behind HAProxy, npm run ha:up), real worker:
// - backupVault with vault.address = HAProxy snapshots the active node and verifies the backup;
// - pointed straight at a standby it fails with VaultStandby on the first attempt (no minutes of
//   retries), naming the active node;
// - the health check through HAProxy reports every node, the leader and autopilot; pointed at a
//   standby it reports the standby as a problem instead of calling the setup healthy;
// - a real Prometheus with deploy/prometheus/ha-scrape.yml scrapes every node and HAProxy and the
//   HA rules (lost quorum, leader flapping) evaluate and stay quiet on the healthy cluster.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderPrometheusConfig } from '../stack/monitoring';
import { freePort } from '../infra/vault/stagingVault';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { BackupResult } from '../common/backup';
import type { HealthReport } from '../common/health';
import type { Config } from '../infra/config';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { HAPROXY_PORTS, HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haUp } from '../stack/ha/index';
import { harnessVaultEnv, metricsTokenFile, nodeAddr, nodeNamed, VAULT_NODES, workerRoleIdFile, workerSecretIdFile } from '../stack/ha/vault';
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

describe('Prometheus on the HA cluster (deploy/prometheus/ha-scrape.yml, real Prometheus)', function () {
  this.timeout(120_000);
  let prom: ChildProcess | undefined;
  let dir: string;
  after(() => {
    prom?.kill('SIGTERM');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes every OpenBao node and HAProxy, sees one active node, and the HA rules stay quiet', async () => {
    await ensureStack();
    await haUp();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-ha-prom-'));
    const port = await freePort();
    const cfgFile = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      cfgFile,
      renderPrometheusConfig({
        interval: '1s',
        workerTargets: ['127.0.0.1:1'],
        openbaoTarget: '127.0.0.1:1',
        openbaoTokenFile: metricsTokenFile(),
        alertmanager: '127.0.0.1:1',
        ha: { openbaoTargets: VAULT_NODES.map((n) => `127.0.0.1:${n.apiPort}`), tokenFile: metricsTokenFile(), haproxyTarget: `127.0.0.1:${HAPROXY_PORTS.stats}` },
      }),
    );
    prom = spawn('prometheus', [`--config.file=${cfgFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    const query = async (q: string) => ((await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    let up: Awaited<ReturnType<typeof query>> = [];
    for (let i = 0; i < 60; i++) {
      up = await query('up{job=~"openbao-ha|haproxy"} == 1').catch(() => []);
      if (up.length === 4) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(up.length, 4, JSON.stringify(up));
    const active = await query('sum(vault_core_active{job="openbao-ha"})');
    assert.equal(active[0]?.value[1], '1');
    assert.equal((await query('count(haproxy_server_status{proxy="vault",state="UP"} == 1)'))[0]?.value[1], '1');
    // Rules evaluate (every second here) and neither HA alert is pending or firing on a healthy cluster.
    await new Promise((r) => setTimeout(r, 3000));
    const rules = (await (await fetch(`http://127.0.0.1:${port}/api/v1/rules`)).json()) as { data: { groups: { name: string; rules: { name: string; state: string; health: string }[] }[] } };
    const ha = rules.data.groups.find((g) => g.name === 'vault-dr-ha')!.rules;
    assert.deepEqual(ha.map((r) => [r.name, r.state, r.health]), [['VaultHaQuorumLost', 'inactive', 'ok'], ['VaultHaNodeDown', 'inactive', 'ok'], ['VaultHaLeaderFlapping', 'inactive', 'ok']]);
  });
});
