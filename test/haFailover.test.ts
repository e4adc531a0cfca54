// The HA harness and the failoverDrill workflow against real servers: three OpenBao raft nodes
// behind HAProxy (npm run ha:up), a real worker, the shared stack's Temporal and S3.
// - the harness is up and fully healthy, every node carries the same audit stanza;
// - failoverDrill started with {} (as from the Web UI) runs one round of each Vault fault
//   (SIGKILL of the leader, SIGSTOP of the leader, planned step-down): a gap measured, no
//   acknowledged write lost, the node back and the cluster fully healthy, the report in S3, and
//   no secret (unseal shares, root or drill token) anywhere in its history;
// - target postgres: a failoverDrill round SIGKILLs the Patroni leader (Patroni and PostgreSQL)
//   while the probe writer inserts through HAProxy; the gap is measured, no acknowledged insert is
//   lost, the old primary comes back as a streaming replica, and no PostgreSQL password is in history;
// - a real Prometheus with the repo's scrape jobs (every OpenBao node, every Patroni, the one
//   HAProxy, the drill metrics) answers every query of the HA overview dashboard;
// - vaultHealthCheck reports the PostgreSQL primary, replicas and lag; a stopped replica makes it
//   degraded and the monitor's rules raise PostgresReplicaDown;
// - a worker process SIGKILLed right after a round injected its fault: the next worker process heals
//   it on the activity's retry, reruns the round and the drill finishes with the cluster healthy;
// - refusals: bad input names the field, a cluster with a
//   node down (not fully healthy; and killing the leader there would lose quorum), a node that
//   does not come back fails the drill with an alert; a fault an interrupted round left behind is
//   healed before the next drill runs.
// Timings are never asserted here (bench/ha.ts measures them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import { buildBaoClient, buildS3Client } from '../infra/clients';
import { registerStateGauges, startMetricsServer } from '../infra/metrics';
import { freePort } from '../infra/vault/stagingVault';
import { renderPrometheusConfig } from '../stack/monitoring';
import { writeWorkerConfigFile } from '../stack/migrationFixture';
import type { FailoverDrillResult } from '../common/ha';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { haUp, haStatus } from '../stack/ha/index';
import { monitorFile, patroniPid, PG_NODES, pgSecrets, postgresHealth, postmasterPid, startPatroni, waitPostgresHealthy } from '../stack/ha/postgres';
import type { HealthReport } from '../common/health';
import { evaluate } from '../common/monitor';
import { HAPROXY_PORTS, HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haDir } from '../stack/ha/proc';
import { AUDIT_STANZA, drillTokenFile, harnessVaultEnv, metricsTokenFile, readInit, nodeConfigFile, nodePid, startNode, stopNode, VAULT_NODES, unsealNode, waitUnsealed } from '../stack/ha/vault';
import { clearAlertDedup, failureOf, historyTexts, mailpitMessages, stackSecrets } from './helpers/inspect';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { killWorkerProcesses, spawnWorkerProcess, type WorkerProcess } from './helpers/workerProcess';
import { withWorker } from './helpers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Brings a stopped or killed node back and waits for the whole cluster to be healthy. */
async function restoreNode(name: string): Promise<void> {
  await startNode(name);
  await unsealNode(name);
  await waitUnsealed(name, 60_000);
  const driver = new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR));
  const deadline = Date.now() + 90_000;
  while (!(await driver.health()).healthy) {
    if (Date.now() > deadline) throw new Error(`cluster not healthy after restoring ${name}: ${(await driver.health()).problems.join('; ')}`);
    await sleep(500);
  }
}

describe('HA failover drill (three OpenBao nodes behind HAProxy, real worker)', function () {
  this.timeout(600_000);
  let cfg: Config;
  let client: Client;

  before(async () => {
    const base = await ensureStack();
    await haUp();
    cfg = { ...withQueue(base, uniqueQueue('ha-drill')), ha: { harnessDir: haDir(), vaultAddress: HAPROXY_VAULT_ADDR, postgresMonitorFile: monitorFile() } };
    client = await connectClient(cfg);
  });
  after(async () => client?.connection.close());

  const start = (id: string, input: unknown) => client.workflow.start('failoverDrill', { taskQueue: cfg.temporal.taskQueue, workflowId: `${id}-${Date.now()}`, args: [input as never] });

  it('harness: three nodes, one leader, HAProxy routing to it, the same audit stanza in every config', async () => {
    const s = await haStatus();
    assert.ok(s.healthy, s.lines.join('\n'));
    const h = await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health();
    assert.equal(h.nodes.filter((n) => n.role === 'leader').length, 1, JSON.stringify(h));
    assert.equal(h.nodes.filter((n) => n.role === 'standby').length, 2, JSON.stringify(h));
    for (const n of VAULT_NODES) assert.ok(fs.readFileSync(nodeConfigFile(n.name), 'utf8').includes(AUDIT_STANZA), `${n.name}'s config carries the audit stanza`);
  });

  it('started with {}: one round of each Vault fault, no acknowledged write lost, cluster healthy again, report in S3', async () => {
    const { result, progress, history } = await withWorker(cfg, async () => {
      const h = await start('ha-drill', {});
      const result = (await h.result()) as FailoverDrillResult;
      return { result, progress: (await h.query('progress')) as { step: string; roundsDone: number }, history: await historyTexts(client, cfg, h.workflowId) };
    });
    // No secret of the HA cluster (unseal shares, root token, drill token) nor of the stack in history.
    const init = readInit();
    const secrets = [init.root_token, ...init.keys_base64, fs.readFileSync(drillTokenFile(), 'utf8').trim(), ...stackSecrets().map((x) => x.value)];
    for (const secret of secrets) {
      assert.ok(!history.raw.includes(secret), 'a secret in the raw history');
      assert.ok(!history.decoded.some((d) => d.includes(secret)), 'a secret in a decoded payload');
    }
    assert.deepEqual([...new Set(history.activityTypes)].sort(), ['checkClusterHealthy', 'healFault', 'publishDrillReport', 'runFailoverRound']);
    assert.deepEqual(
      result.rounds.map((r) => r.fault),
      ['kill-leader', 'stop-node', 'planned'],
    );
    for (const r of result.rounds) {
      assert.equal(r.target, 'vault');
      assert.equal(r.lost, 0, JSON.stringify(r));
      assert.ok(r.writesAcked > 0 && r.gapMs > 0, JSON.stringify(r));
      assert.ok(VAULT_NODES.some((n) => n.name === r.node));
    }
    assert.equal(result.lostWrites, 0);
    assert.equal(result.stats.length, 3);
    assert.deepEqual(progress, { ...progress, step: 'done', roundsDone: 3 });
    // The cluster is whole again: every node healthy, the killed one restarted as the same member.
    const h = await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health();
    assert.ok(h.healthy, h.problems.join('; '));
    const s3 = buildS3Client(cfg.s3);
    const md = await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: result.reportMarkdownKey! }))).Body!.transformToString();
    assert.match(md, /\| vault \| kill-leader \| 1 \|/);
    const json = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: result.reportJsonKey! }))).Body!.transformToString()) as FailoverDrillResult;
    assert.equal(json.rounds.length, 3);
  });

  it('a fault left by an interrupted round (worker killed after injecting) is healed before the next drill runs', async () => {
    // What a worker SIGKILLed mid-round leaves behind: the leader killed and the pending record that
    // runFailoverRound writes right after injecting (the retry, or the next drill, heals it first).
    const driver = new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR));
    const f = await driver.inject('kill-leader');
    const pending = path.join(haDir(), 'drill-state', 'pending-vault.json');
    fs.mkdirSync(path.dirname(pending), { recursive: true });
    fs.writeFileSync(pending, JSON.stringify(f));
    const result = await withWorker(cfg, async () => (await start('ha-leftover', { faults: ['planned'] })).result() as Promise<FailoverDrillResult>);
    assert.equal(result.rounds.length, 1);
    assert.equal(result.lostWrites, 0);
    assert.ok(!fs.existsSync(pending), 'the leftover fault is healed and its record removed');
    assert.ok(nodePid(f.node) !== undefined, `${f.node} runs again`);
    assert.ok((await driver.health()).healthy);
  });

  it('postgres: the Patroni leader SIGKILLed under writes fails over through HAProxy, no acknowledged insert lost, the old primary rejoins as a replica', async () => {
    const before = await postgresHealth();
    assert.ok(before.healthy, before.problems.join('; '));
    const { result, history } = await withWorker(cfg, async () => {
      const h = await start('ha-pg', { targets: ['postgres'], faults: ['kill-leader'] });
      const result = (await h.result()) as FailoverDrillResult;
      return { result, history: await historyTexts(client, cfg, h.workflowId) };
    });
    for (const secret of Object.values(pgSecrets())) {
      assert.ok(!history.raw.includes(secret) && !history.decoded.some((d) => d.includes(secret)), 'a PostgreSQL password in history');
    }
    assert.equal(result.rounds.length, 1);
    const [r] = result.rounds;
    assert.equal(r!.target, 'postgres');
    assert.equal(r!.fault, 'kill-leader');
    assert.equal(r!.node, before.primary, 'the fault hit the primary');
    assert.ok(r!.writesAcked > 0 && r!.gapMs > 0, JSON.stringify(r));
    assert.equal(r!.lost, 0, JSON.stringify(r));
    assert.deepEqual(result.stats.map((s) => [s.target, s.fault, s.lostWrites]), [['postgres', 'kill-leader', 0]]);
    // healFault returned only once the cluster was whole: a new primary, the old one streaming from it.
    const after = await postgresHealth();
    assert.ok(after.healthy, after.problems.join('; '));
    assert.notEqual(after.primary, before.primary, 'no failover happened');
    assert.ok(after.replicas.some((x) => x.name === before.primary), `${before.primary} is not streaming from ${after.primary}`);
    process.stdout.write(`      (postgres kill-leader: ${r!.node} → ${after.primary}, first write after ${(r!.gapMs / 1000).toFixed(1)} s, ${r!.writesAcked} acknowledged, healed in ${(r!.healMs / 1000).toFixed(1)} s)\n`);
  });

  it('a real Prometheus scrapes every OpenBao node, every Patroni, the one HAProxy and the drill metrics, and every HA overview dashboard query returns data', async () => {
    // After the drills above, so drills/failover/latest.json holds a report with both targets' numbers.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-ha-dash-'));
    const registry = new Registry();
    registerStateGauges({ cfg, s3: buildS3Client(cfg.s3), bao: buildBaoClient(cfg.vault), cacheMs: 0, registry });
    const [exporterPort, promPort] = [await freePort(), await freePort()];
    const exporter = await startMetricsServer(`127.0.0.1:${exporterPort}`, registry);
    let prom: ChildProcess | undefined;
    try {
      fs.writeFileSync(
        path.join(dir, 'prometheus.yml'),
        renderPrometheusConfig({
          interval: '1s',
          workerTargets: [`127.0.0.1:${exporterPort}`],
          openbaoTarget: '127.0.0.1:1',
          openbaoTokenFile: metricsTokenFile(),
          alertmanager: '127.0.0.1:1',
          patroniTargets: PG_NODES.map((n) => `127.0.0.1:${n.restPort}`),
          ha: { openbaoTargets: VAULT_NODES.map((n) => `127.0.0.1:${n.apiPort}`), tokenFile: metricsTokenFile(), haproxyTarget: `127.0.0.1:${HAPROXY_PORTS.stats}` },
        }),
      );
      prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
      const query = async (q: string) => (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      // 3 OpenBao nodes + HAProxy + 3 Patroni + the exporter.
      let up = 0;
      for (let i = 0; i < 120 && up < 8; i++) {
        up = (await query('up{job=~"openbao-ha|haproxy|patroni|vault-dr"} == 1').catch(() => undefined))?.data?.result.length ?? 0;
        if (up < 8) await sleep(500);
      }
      assert.equal(up, 8, 'Prometheus does not scrape all 8 HA targets');
      await sleep(3000); // a few 1 s scrapes, so rate() and changes() have points
      const d = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'grafana', 'dashboards', 'ha-overview.json'), 'utf8')) as { uid: string; panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[] };
      assert.equal(d.uid, 'vault-dr-ha-overview');
      const failures: string[] = [];
      for (const panel of d.panels) {
        assert.equal(panel.datasource.uid, 'prometheus', panel.title);
        for (const t of panel.targets) {
          const res = await query(t.expr.replaceAll('$__rate_interval', '1m'));
          if (res.status !== 'success') failures.push(`${panel.title}: ${t.expr}: ${res.error}`);
          else if (!res.data?.result.length) failures.push(`${panel.title}: ${t.expr}: no data`);
        }
      }
      assert.deepEqual(failures, []);
      // The panels show the right thing on this healthy cluster, not just something.
      assert.equal((await query('sum(haproxy_server_status{proxy="vault",state="UP"})')).data!.result[0]?.value[1], '1');
      const pgRouting = (await query('sum by (proxy) (haproxy_server_status{proxy=~"vaultdr_pg_rw|vaultdr_pg_ro",state="UP"})')).data!.result;
      assert.deepEqual(Object.fromEntries(pgRouting.map((r) => [r.metric.proxy, r.value[1]])), { vaultdr_pg_rw: '1', vaultdr_pg_ro: '2' });
      const gaps = (await query('vaultdr_ha_failover_gap_seconds{quantile="1"}')).data!.result;
      assert.ok(gaps.some((g) => g.metric.target === 'postgres' && Number(g.value[1]) > 0), JSON.stringify(gaps));
    } finally {
      prom?.kill('SIGTERM');
      exporter.close();
      await sleep(300);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('vaultHealthCheck reports the PostgreSQL primary, both replicas and their lag; a stopped replica makes it degraded and raises PostgresReplicaDown', async () => {
    const run = () => withWorker(cfg, async () => (await client.workflow.start('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId: `ha-health-${Date.now()}`, args: [{ checks: ['postgres'] }] })).result()) as Promise<HealthReport>;
    const ok = await run();
    const h = await postgresHealth();
    assert.equal(ok.status, 'healthy', JSON.stringify(ok.postgres));
    assert.equal(ok.postgres?.primary, h.primary);
    assert.deepEqual(ok.postgres!.replicas.map((r) => r.name).sort(), h.replicas.map((r) => r.name).sort());
    assert.ok(ok.postgres!.replicas.every((r) => r.state === 'streaming' && Number.isInteger(r.lagBytes) && r.lagBytes >= 0), JSON.stringify(ok.postgres));
    assert.equal(ok.postgres!.replicas.filter((r) => r.sync).length, 1);
    // A replica's Patroni stopped cleanly (it stops its PostgreSQL): one replica fewer.
    const replica = h.replicas.find((r) => !r.sync)!.name;
    const node = PG_NODES.find((n) => n.name === replica)!;
    process.kill(patroniPid(node)!, 'SIGTERM');
    try {
      const deadline = Date.now() + 60_000;
      while ((patroniPid(node) !== undefined || postmasterPid(node) !== undefined) && Date.now() < deadline) await sleep(200);
      const bad = await run();
      assert.equal(bad.status, 'degraded', JSON.stringify(bad.postgres));
      assert.deepEqual(bad.postgres!.down, [replica]);
      assert.match(bad.postgres!.problems.join('; '), new RegExp(`${replica} is not streaming from the primary`));
      const problems = evaluate({ vault: { reachable: true, initialized: true, sealed: false, standby: false, raftPeers: [], problems: [] } as never, autopilot: { unhealthyServers: [] }, dr: { storeUp: false } as never, postgres: bad.postgres }, { expectedRaftPeers: 1, backupMaxAgeHours: 1, validationMaxAgeDays: 1 }, Date.now() / 1000);
      assert.deepEqual(problems.map((p) => p.key).filter((k) => k.startsWith('Postgres')), ['PostgresReplicaDown']);
    } finally {
      await startPatroni(node);
      await waitPostgresHealthy(90_000);
    }
  });

  it('a worker SIGKILLed after the round injected its fault: a new worker process heals the fault, reruns the round and finishes', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-ha-crash-'));
    const cfgFile = writeWorkerConfigFile(tmp, cfg.migration, { ha: cfg.ha });
    const workers: WorkerProcess[] = [];
    const startWorker = async (n: number) => {
      workers.push(await spawnWorkerProcess(cfgFile, cfg.temporal.taskQueue, `worker ${n}`));
      return workers.at(-1)!.child;
    };
    const pending = path.join(haDir(), 'drill-state', 'pending-vault.json');
    try {
      const first = await startWorker(0);
      const h = await start('ha-crash', { faults: ['kill-leader'] });
      // The round has killed the leader and recorded it: the worker dies with the fault in place.
      const deadline = Date.now() + 60_000;
      while (!fs.existsSync(pending)) {
        assert.ok(Date.now() < deadline, 'the round never injected its fault');
        await sleep(50);
      }
      const f = JSON.parse(fs.readFileSync(pending, 'utf8')) as { node: string; pid: number };
      first.kill('SIGKILL');
      assert.equal(nodePid(f.node), undefined, `${f.node} was killed by the round`);
      await startWorker(1);
      const result = (await h.result()) as FailoverDrillResult;
      assert.equal(result.rounds.length, 1);
      assert.equal(result.lostWrites, 0);
      assert.ok(!fs.existsSync(pending), 'the fault record is cleared');
      assert.ok(nodePid(f.node) !== undefined, `${f.node} runs again`);
      const health = await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health();
      assert.ok(health.healthy, health.problems.join('; '));
      // The retried round started from a healed cluster: its attempt number is > 1 in history.
      const events = (await client.workflowService.getWorkflowExecutionHistory({ namespace: cfg.temporal.namespace, execution: { workflowId: h.workflowId } })).history!.events!;
      const started = events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
      assert.ok(started.some((a) => (a ?? 1) > 1), `no activity was retried after the kill: attempts ${started.join(',')}`);
    } finally {
      killWorkerProcesses(workers);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('refuses bad input non-retryably, naming the field', async () => {
    await withWorker(cfg, async () => {
      const f1 = await failureOf(start('ha-bad-rounds', { rounds: 0 }).then((h) => h.result()));
      assert.equal(f1.type, 'InvalidInput');
      assert.match(f1.message, /rounds/);
      const f2 = await failureOf(start('ha-bad-fault', { faults: ['kill-postgres'] }).then((h) => h.result()));
      assert.equal(f2.type, 'InvalidInput');
      assert.match(f2.message, /field "faults\.0": kill-postgres applies to postgres only, not to vault/);
    });
  });

  it('refuses to start while a node is down, and refuses to kill the leader when that would lose quorum', async () => {
    const leader = (await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).leader!;
    const standby = VAULT_NODES.find((n) => n.name !== leader)!.name;
    await stopNode(standby);
    try {
      const driver = new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR));
      await assert.rejects(driver.inject('kill-leader'), (err: Error & { type?: string }) => {
        assert.equal(err.type, 'HaDrillRefused');
        assert.match(err.message, /refusing to kill-leader bao-\d: only 1 other healthy node\(s\) would remain, below raft's quorum of 2/);
        return true;
      });
      // Nothing was killed: the leader still runs.
      assert.ok(nodePid(leader) !== undefined);
      const f = await withWorker(cfg, () => failureOf(start('ha-degraded', { faults: ['kill-leader'] }).then((h) => h.result())));
      assert.equal(f.type, 'HaDrillRefused');
      assert.match(f.message, new RegExp(`refusing to drill a cluster that is not fully healthy: .*${standby}: process not running`));
    } finally {
      await restoreNode(standby);
    }
  });

  it('a node that does not come back fails the drill with HaNodeDidNotRejoin and an alert', async () => {
    // The leader's config is made unreadable for the heal: the restart fails until it is put back.
    const leader = (await new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR)).health()).leader!;
    const conf = nodeConfigFile(leader);
    const saved = fs.readFileSync(conf, 'utf8');
    await clearAlertDedup(buildS3Client(cfg.s3), cfg.s3.bucket);
    const before = new Set((await mailpitMessages()).map((m) => m.ID));
    try {
      const f = await withWorker(cfg, async () => {
        const h = await start('ha-norejoin', { faults: ['kill-leader'], healTimeoutSeconds: 10 });
        // Break the config only once the round has killed the leader (the heal restarts it from it).
        const deadline = Date.now() + 60_000;
        while (nodePid(leader) !== undefined && Date.now() < deadline) await sleep(100);
        fs.writeFileSync(conf, 'this is not HCL {');
        return failureOf(h.result());
      });
      assert.equal(f.type, 'HaNodeDidNotRejoin');
      assert.match(f.message, new RegExp(`failed at healFault .*vault: ${leader} did not rejoin the cluster within 10s after kill-leader`));
      let alert;
      for (let i = 0; i < 40 && !alert; i++) {
        alert = (await mailpitMessages()).find((m) => !before.has(m.ID) && /Failover drill .* failed at healFault/.test(m.Subject));
        if (!alert) await sleep(250);
      }
      assert.ok(alert, 'an alert e-mail names the failed step');
    } finally {
      fs.writeFileSync(conf, saved);
      await restoreNode(leader);
    }
  });
});
