// The HA harness's PostgreSQL half against real servers: Patroni + PostgreSQL 15 ×3, etcd, HAProxy
// (stack/ha/postgres.ts). Up and idempotent; one drill round per fault through the postgres
// HaDriver with zero acknowledged writes lost and the node back as a streaming replica; the
// alert rules' promtool tests; a real Prometheus scraping Patroni with the repo's scrape job,
// evaluating the PostgreSQL rules and every HA PostgreSQL dashboard query. Timings are printed,
// never asserted (bench/haPostgres.ts measures them).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runPgRound } from '../bench/haPostgres';
import type { HaDriver } from '../infra/ha/driver';
import { postgresHaDriver } from '../infra/postgres/haDriver';
import { haproxyServers } from '../stack/ha/haproxy';
import { haUp } from '../stack/ha/index';
import {
  harnessDriverOptions,
  patroniPid,
  PG_NODES,
  PG_PORTS,
  postgresHaproxySections,
  postgresHealth,
  postgresStatus,
  postgresUp,
} from '../stack/ha/postgres';
import { renderPrometheusConfig } from '../stack/monitoring';
import { PROJECT_ROOT } from './helpers/stack';

const DEPLOY = path.join(PROJECT_ROOT, 'deploy');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HA PostgreSQL harness (Patroni, etcd, HAProxy)', function () {
  this.timeout(240_000);
  let driver: HaDriver;

  before(async () => {
    await haUp(undefined, { vault: false });
    driver = postgresHaDriver(harnessDriverOptions());
  });
  after(async () => {
    await driver?.close();
  });

  it('comes up with a primary, two streaming replicas (one synchronous) and HAProxy routing writes to the primary; a second up changes nothing', async () => {
    const again = await postgresUp();
    assert.deepEqual(again.results.map((r) => r.result), again.results.map(() => 'already running'), JSON.stringify(again.results));
    assert.deepEqual(again.bootstrap, [], 'a second up created or changed something');
    const s = await postgresStatus();
    assert.ok(s.processes.every((p) => p.healthy), JSON.stringify(s.processes));
    const h = await postgresHealth();
    assert.equal(h.healthy, true, h.problems.join('; '));
    assert.equal(h.replicas.length, 2);
    assert.equal(h.replicas.filter((r) => r.sync).length, 1, 'exactly one synchronous standby');
    const servers = await haproxyServers();
    assert.deepEqual(servers.filter((x) => x.backend === 'vaultdr_pg_rw' && x.status === 'UP').map((x) => x.server), [h.primary]);
    assert.deepEqual(servers.filter((x) => x.backend === 'vaultdr_pg_ro' && x.status === 'UP').map((x) => x.server).sort(), h.replicas.map((r) => r.name).sort());
    // The read-only port really lands on a replica: it refuses writes.
    const { Client } = await import('pg');
    const ro = new Client({ ...harnessDriverOptions().connection, port: PG_PORTS.haproxyReadOnly });
    await ro.connect();
    try {
      assert.equal((await ro.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, true);
      await assert.rejects(ro.query("INSERT INTO ha_drill (round, seq) VALUES ('ro', 1)"), /read-only transaction/);
    } finally {
      await ro.end();
    }
    const dh = await driver.health();
    assert.equal(dh.target, 'postgres');
    assert.deepEqual(dh.nodes.map((n) => n.role).sort(), ['leader', 'replica', 'replica']);
    assert.ok(dh.nodes.filter((n) => n.role === 'replica').every((n) => typeof n.lagBytes === 'number'));
  });

  it('the HAProxy sections check Patroni at the checklist\'s 5 s interval with fast down/up detection and cut sessions of a server marked down', () => {
    const s = postgresHaproxySections();
    assert.match(s, /bind 127\.0\.0\.1:5440[\s\S]*uri \/primary/);
    assert.match(s, /bind 127\.0\.0\.1:5439[\s\S]*uri \/replica/);
    for (const n of PG_NODES) assert.match(s, new RegExp(`server ${n.name} 127\\.0\\.0\\.1:${n.pgPort} check port ${n.restPort}`));
    assert.match(s, /default-server inter 5s fastinter 500ms downinter 500ms rise 2 fall 2 on-marked-down shutdown-sessions/);
  });

  it('missing() reports rows that were never written (the loss check can fail)', async () => {
    const round = `never-${Date.now()}`;
    await driver.write(round, 1);
    assert.deepEqual(await driver.missing(round, [1, 2, 3]), [2, 3]);
  });

  for (const fault of ['kill-leader', 'kill-postgres', 'stop-node', 'planned'] as const) {
    it(`${fault}: writes resume through HAProxy, no acknowledged write is lost, the node rejoins`, async () => {
      const before = await postgresHealth();
      assert.equal(before.healthy, true, before.problems.join('; '));
      const oldPatroni = patroniPid(PG_NODES.find((n) => n.name === before.primary)!);
      const r = await runPgRound(driver, fault);
      assert.equal(r.node, before.primary, 'the fault hit the primary');
      assert.ok(r.acknowledged > 10, `only ${r.acknowledged} writes acknowledged`);
      assert.deepEqual(r.lost, [], `acknowledged writes lost: ${r.lost.join(',')}`);
      const after = await postgresHealth();
      assert.equal(after.healthy, true, after.problems.join('; '));
      if (fault === 'kill-postgres') {
        // Patroni restarted PostgreSQL in place (primary_start_timeout); the node stays primary.
        assert.equal(after.primary, r.node);
        assert.equal(patroniPid(PG_NODES.find((n) => n.name === r.node)!), oldPatroni, 'Patroni itself was not restarted');
      } else {
        assert.notEqual(after.primary, r.node, 'no failover happened');
        assert.ok(after.replicas.some((x) => x.name === r.node), `${r.node} is not streaming from ${after.primary}`);
      }
      if (fault === 'kill-leader') assert.notEqual(patroniPid(PG_NODES.find((n) => n.name === r.node)!), oldPatroni, 'Patroni was not killed and restarted');
      process.stdout.write(`      (${fault}: ${r.node} → ${after.primary}, first write after ${(r.gapMs / 1000).toFixed(1)} s, ${r.acknowledged} acknowledged, rejoined in ${(r.rejoinMs / 1000).toFixed(1)} s)\n`);
    });
  }

  it('the PostgreSQL alert rules pass their promtool unit tests, and a broken rule fails them', () => {
    // Only the PostgreSQL tests of vault-dr.rules.test.yml (monitoring.test.ts runs them all), so
    // this stays fast; then the same tests against a copy whose replica-down threshold is wrong.
    const rulesFile = path.join(DEPLOY, 'prometheus', 'rules', 'vault-dr.rules.yml');
    const rules = fs.readFileSync(rulesFile, 'utf8');
    const tests = fs.readFileSync(path.join(DEPLOY, 'prometheus', 'rules', 'vault-dr.rules.test.yml'), 'utf8');
    const names = ['ReplicationLagHigh', 'PostgresReplicaDown', 'PostgresNoPrimary'];
    for (const a of names) assert.match(rules, new RegExp(`- alert: ${a}\\n`));
    const [, ...blocks] = tests.split('\n  - name: ');
    const pg = blocks.filter((b) => names.some((a) => new RegExp(`alertname: ${a}\\b`).test(b)));
    for (const a of names) assert.ok(pg.some((b) => b.includes(`alertname: ${a}`)), `${a} has no promtool test`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-pgrules-'));
    try {
      const run = (rulesPath: string) => {
        const file = path.join(dir, 'pg.test.yml');
        fs.writeFileSync(file, `rule_files:\n  - ${rulesPath}\nevaluation_interval: 1m\ntests:\n${pg.map((b) => `  - name: ${b}`).join('\n')}\n`);
        return spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
      };
      const ok = run(rulesFile);
      assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}`);
      const broken = path.join(dir, 'broken.rules.yml');
      fs.writeFileSync(broken, rules.replace('(patroni_replica * patroni_postgres_running) < 2', '(patroni_replica * patroni_postgres_running) < 1'));
      const bad = run(broken);
      assert.notEqual(bad.status, 0, 'promtool passed a replica-down rule that cannot fire for one lost replica');
      assert.match(`${bad.stdout}${bad.stderr}`, /PostgresReplicaDown/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a real Prometheus scrapes every Patroni with the repo\'s job, evaluates the PostgreSQL rules, and every HA PostgreSQL dashboard query returns data', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-ha-prom-'));
    const port = 19094;
    let prom: ChildProcess | undefined;
    try {
      const cfg = renderPrometheusConfig({
        interval: '1s',
        workerTargets: ['127.0.0.1:1'],
        openbaoTarget: '127.0.0.1:1',
        openbaoTokenFile: path.join(dir, 'no-token'),
        alertmanager: '127.0.0.1:1',
        patroniTargets: PG_NODES.map((n) => `127.0.0.1:${n.restPort}`),
      });
      fs.writeFileSync(path.join(dir, 'no-token'), 'x');
      fs.writeFileSync(path.join(dir, 'prometheus.yml'), cfg);
      prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
      const query = async (q: string) => {
        const res = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
        return res;
      };
      const deadline = Date.now() + 60_000;
      let up: { metric: Record<string, string>; value: [number, string] }[] = [];
      while (Date.now() < deadline) {
        up = (await query('up{job="patroni"} == 1').catch(() => undefined))?.data?.result ?? [];
        if (up.length === 3) break;
        await sleep(500);
      }
      assert.equal(up.length, 3, 'Prometheus does not scrape all three Patroni nodes');
      await sleep(3000); // a few 1 s scrapes
      const primary = (await query('max by (scope) (patroni_primary)')).data!.result;
      assert.equal(primary[0]?.value[1], '1');
      const replicas = (await query('sum by (scope) (patroni_replica * patroni_postgres_running)')).data!.result;
      assert.equal(replicas[0]?.value[1], '2', 'the PostgresReplicaDown expression does not count two running replicas');
      const rules = (await (await fetch(`http://127.0.0.1:${port}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; state?: string }[] }[] } };
      const pgRules = rules.data.groups.flatMap((g) => g.rules).filter((r) => ['ReplicationLagHigh', 'PostgresReplicaDown', 'PostgresNoPrimary'].includes(r.name));
      assert.equal(pgRules.length, 3);
      for (const r of pgRules) {
        assert.equal(r.health, 'ok', `${r.name} does not evaluate`);
        assert.equal(r.state, 'inactive', `${r.name} is ${r.state} on a healthy cluster`);
      }
      const d = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'grafana', 'dashboards', 'ha-postgres.json'), 'utf8')) as { panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[] };
      const failures: string[] = [];
      let n = 0;
      for (const panel of d.panels) {
        assert.equal(panel.datasource.uid, 'prometheus', panel.title);
        for (const t of panel.targets) {
          n++;
          const res = await query(t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$__range', '1h'));
          if (res.status !== 'success') failures.push(`${panel.title}: ${t.expr}: ${res.error}`);
          else if (!res.data?.result.length) failures.push(`${panel.title}: ${t.expr}: no data`);
        }
      }
      assert.deepEqual(failures, [], `${failures.length} of ${n} panel queries failed`);
      const lag = (await query(d.panels.find((p) => p.title.startsWith('Replication lag'))!.targets[0]!.expr)).data!.result;
      assert.equal(lag.length, 2, 'the lag query does not give one series per replica');
    } finally {
      prom?.kill('SIGTERM');
      await sleep(300);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
