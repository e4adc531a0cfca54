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
// - vaultHealthCheck reports the PostgreSQL primary, replicas and lag; a stopped replica makes it
//   degraded and the monitor's rules raise PostgresReplicaDown;
// - refusals: bad input names the field, a cluster with a
//   node down (not fully healthy; and killing the leader there would lose quorum), a node that
//   does not come back fails the drill with an alert; a fault an interrupted round left behind is
//   healed before the next drill runs.
// Timings are never asserted here (bench/ha.ts measures them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import { buildS3Client } from '../infra/clients';
import type { FailoverDrillResult } from '../common/ha';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { haUp, haStatus } from '../stack/ha/index';
import { patroniPid, PG_NODES, pgSecrets, postgresHealth, postmasterPid, postgresUp, startPatroni, waitPostgresHealthy } from '../stack/ha/postgres';
import type { HealthReport } from '../common/health';
import { evaluate } from '../common/monitor';
import { HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haDir } from '../stack/ha/proc';
import { AUDIT_STANZA, drillTokenFile, harnessVaultEnv, readInit, nodeConfigFile, nodePid, startNode, stopNode, VAULT_NODES, unsealNode, waitUnsealed } from '../stack/ha/vault';
import { clearAlertDedup, failureOf, historyTexts, mailpitMessages, stackSecrets } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
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
    await postgresUp();
    cfg = { ...withQueue(base, uniqueQueue('ha-drill')), ha: { harnessDir: haDir(), vaultAddress: HAPROXY_VAULT_ADDR } };
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
