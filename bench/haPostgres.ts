// `node lib/bench/haPostgres.js [--rounds 20] [--faults kill-leader,kill-postgres,stop-node,planned]`:
// PostgreSQL failover through HAProxy, measured like the failover drill measures it. Per round: a
// writer inserts sequence-numbered rows through HAProxy's read-write port (one at a time, as a
// client would), a fault is injected into the primary, the time from the fault to the first
// acknowledged write that was sent after the fault is taken, the node is healed and must rejoin
// as a streaming replica, and every acknowledged row is read back (acknowledged-writes-lost).
// Results: bench/results/ha-postgres.{json,md}. Nothing here is asserted: numbers are reported.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HaDriver, HaFault } from '../infra/ha/driver';
import { postgresHaDriver } from '../infra/postgres/haDriver';
import { harnessDriverOptions, PATRONI_DCS, PATRONI_PIN, PG_PARAMETERS, postgresHaproxySections, PROJECT_ROOT } from '../stack/ha/postgres';
import { haUp } from '../stack/ha/index';

export const PG_FAULTS: HaFault[] = ['kill-leader', 'kill-postgres', 'stop-node', 'planned'];

export interface PgRoundResult {
  fault: HaFault;
  node: string;
  newPrimary?: string;
  /** fault → first acknowledged write sent after the fault, ms */
  gapMs: number;
  /** writes that failed (error or timeout) between the fault and that first success */
  failedWrites: number;
  acknowledged: number;
  lost: number[];
  /** heal start → node streaming again and the cluster fully healthy, ms */
  rejoinMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One drill round against `driver`; throws when the node does not rejoin or the writer never recovers. */
export interface RoundOptions {
  settleMs?: number;
  afterMs?: number;
  recoverTimeoutMs?: number;
  healTimeoutMs?: number;
  /**
   * Probe mode: start a write every probeEveryMs whether or not earlier ones have answered (at
   * most 30 in flight), so the gap is not rounded up to a write timeout while writes hang (strict
   * synchronous commit waiting for a standby, a frozen primary). Default: one write at a time.
   */
  probeEveryMs?: number;
}

export async function runPgRound(driver: HaDriver, fault: HaFault, o: RoundOptions = {}): Promise<PgRoundResult> {
  const round = `${fault}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const acked: number[] = [];
  let seq = 0;
  let faultAt: number | undefined;
  let firstAfter: number | undefined;
  let failedAfter = 0;
  let stop = false;
  let stopAt: number | undefined;
  // Every write after the fault: when it was sent, when it answered, and whether it was acknowledged.
  const after: { sentAt: number; doneAt: number; ok: boolean }[] = [];
  /**
   * The end of the outage: the first acknowledgement of a write sent after the last write that
   * failed. A write acknowledged before anything failed does not end it: right after a SIGKILL of
   * the postmaster, backends that have not yet noticed still commit for a few milliseconds.
   */
  const recovery = (): number | undefined => {
    const lastFail = Math.max(-Infinity, ...after.filter((w) => !w.ok).map((w) => w.sentAt));
    const oks = after.filter((w) => w.ok && w.sentAt > lastFail).map((w) => w.doneAt);
    return oks.length ? Math.min(...oks) : undefined;
  };
  const attempt = async (): Promise<boolean> => {
    const s = ++seq;
    const sentAt = Date.now();
    let ok = false;
    try {
      await driver.write(round, s);
      acked.push(s);
      ok = true;
    } catch {
      ok = false;
    }
    if (faultAt !== undefined && sentAt >= faultAt) {
      after.push({ sentAt, doneAt: Date.now(), ok });
      if (!ok) failedAfter++;
      // Recovered once writes have kept succeeding for afterMs with no failure answered meanwhile.
      const r = recovery();
      const lastFailDone = Math.max(-Infinity, ...after.filter((w) => !w.ok).map((w) => w.doneAt));
      if (r !== undefined && Date.now() - r >= (o.afterMs ?? 1000) && Date.now() - lastFailDone >= (o.afterMs ?? 1000)) {
        firstAfter = r;
        stopAt = Date.now();
      }
    }
    return ok;
  };
  const writer = (async () => {
    if (o.probeEveryMs) {
      const inFlight = new Set<Promise<boolean>>();
      while (!stop && !(stopAt !== undefined && Date.now() >= stopAt)) {
        if (inFlight.size < 30) {
          const p: Promise<boolean> = attempt().finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
        await sleep(o.probeEveryMs);
      }
      await Promise.all(inFlight);
      return;
    }
    while (!stop) {
      const ok = await attempt();
      if (stopAt !== undefined && Date.now() >= stopAt) break;
      await sleep(ok ? 20 : 100);
    }
  })();
  await sleep(o.settleMs ?? 1000);
  if (acked.length === 0) {
    stop = true;
    await writer;
    throw new Error(`${fault}: no write acknowledged before the fault (is the cluster healthy?)`);
  }
  const f = await driver.inject(fault);
  faultAt = f.at;
  const deadline = f.at + (o.recoverTimeoutMs ?? 90_000);
  while (firstAfter === undefined && Date.now() < deadline) await sleep(50);
  if (firstAfter === undefined) stop = true;
  await writer;
  if (firstAfter === undefined) {
    await driver.heal(f, o.healTimeoutMs ?? 120_000).catch(() => undefined);
    throw new Error(`${fault}: no write acknowledged within ${(o.recoverTimeoutMs ?? 90_000) / 1000}s of the fault on ${f.node}`);
  }
  const healStart = Date.now();
  await driver.heal(f, o.healTimeoutMs ?? 120_000);
  const rejoinMs = Date.now() - healStart;
  const lost = await driver.missing(round, acked);
  const h = await driver.health();
  return { fault, node: f.node, newPrimary: h.leader, gapMs: firstAfter - f.at, failedWrites: failedAfter, acknowledged: acked.length, lost, rejoinMs };
}

function pct(sorted: number[], p: number): number {
  // Nearest-rank percentile.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarize(rows: PgRoundResult[]) {
  return PG_FAULTS.filter((f) => rows.some((r) => r.fault === f)).map((fault) => {
    const rs = rows.filter((r) => r.fault === fault);
    const gaps = rs.map((r) => r.gapMs / 1000).sort((a, b) => a - b);
    const rejoin = rs.map((r) => r.rejoinMs / 1000).sort((a, b) => a - b);
    return {
      fault,
      rounds: rs.length,
      p50: pct(gaps, 50),
      p95: pct(gaps, 95),
      min: gaps[0]!,
      max: gaps[gaps.length - 1]!,
      rejoinP50: pct(rejoin, 50),
      rejoinMax: rejoin[rejoin.length - 1]!,
      acknowledged: rs.reduce((a, r) => a + r.acknowledged, 0),
      lost: rs.reduce((a, r) => a + r.lost.length, 0),
    };
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rounds = Number(arg('--rounds') ?? 20);
  const faults = (arg('--faults')?.split(',') ?? PG_FAULTS) as HaFault[];
  const outDir = arg('--out') ?? path.join(PROJECT_ROOT, 'bench', 'results');
  const probeEveryMs = arg('--probe-ms') ? Number(arg('--probe-ms')) : undefined;
  const name = probeEveryMs ? 'ha-postgres-probe' : 'ha-postgres';
  if (args.includes('--render')) {
    // Rewrite the .md from the committed .json (after a change to the report's wording).
    const j = JSON.parse(fs.readFileSync(path.join(outDir, `${name}.json`), 'utf8')) as { started: string; rows: PgRoundResult[]; errors: string[]; roundsPerFault: number; probeEveryMs?: number; machine: string };
    writeResults(outDir, name, j.started, j.rows, j.errors, j.roundsPerFault, j.probeEveryMs, j.machine);
    return;
  }
  await haUp((l) => console.log(`ha-postgres: ${l}`), { vault: false });
  // Probe mode keeps up to 30 writes in flight, each on its own connection.
  const driver = postgresHaDriver({ ...harnessDriverOptions(), poolSize: probeEveryMs ? 32 : 4 });
  const rows: PgRoundResult[] = [];
  const errors: string[] = [];
  const started = new Date().toISOString();
  try {
    for (const fault of faults) {
      for (let i = 1; i <= rounds; i++) {
        // The next round starts from full health, as the drill does.
        const deadline = Date.now() + 120_000;
        while (!(await driver.health()).healthy && Date.now() < deadline) await sleep(500);
        try {
          const r = await runPgRound(driver, fault, { probeEveryMs });
          rows.push(r);
          console.log(`${fault} ${i}/${rounds}: ${r.node} → ${r.newPrimary}: first write after ${(r.gapMs / 1000).toFixed(2)} s (${r.failedWrites} failed), ${r.acknowledged} acknowledged, ${r.lost.length} lost, rejoined in ${(r.rejoinMs / 1000).toFixed(1)} s`);
        } catch (err) {
          errors.push(`${fault} round ${i}: ${(err as Error).message}`);
          console.log(`${fault} ${i}/${rounds}: FAILED ${(err as Error).message}`);
        }
        fs.mkdirSync(outDir, { recursive: true });
        writeResults(outDir, name, started, rows, errors, rounds, probeEveryMs);
      }
    }
  } finally {
    await driver.close();
  }
}

function writeResults(outDir: string, name: string, started: string, rows: PgRoundResult[], errors: string[], roundsPerFault: number, probeEveryMs?: number, machineOf?: string): void {
  const summary = summarize(rows);
  const settings = { patroni: PATRONI_DCS, parameters: PG_PARAMETERS, haproxy: postgresHaproxySections().split('\n').find((l) => l.trim().startsWith('default-server'))!.trim() };
  const machine = machineOf ?? `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)} at the end`;
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify({ started, finished: new Date().toISOString(), machine, roundsPerFault, probeEveryMs, settings, summary, errors, rows }, null, 2) + '\n');
  const writer = probeEveryMs
    ? `probe writer: a new INSERT every ${probeEveryMs} ms whether or not earlier ones answered (up to 30 in flight, 3 s client timeout each), so the gap is not rounded up to a timeout while writes wait`
    : 'one writer, one INSERT at a time, the next 20 ms after an acknowledgement (100 ms after a failure), 3 s client timeout: a write that hangs (strict synchronous commit waiting for a standby, a frozen primary) costs up to 3 s before the next try, so short gaps are rounded up';
  const md = [
    `# PostgreSQL failover through HAProxy${probeEveryMs ? ' (probe writer)' : ''} — ${started}`,
    '',
    `Machine: ${machine}; the machine's 2 cores are shared with other jobs (load average 10–16 during the run). Three PostgreSQL 15 nodes under Patroni ${PATRONI_PIN.split('==')[1]} (PyPI) with one etcd 3.4, HAProxy 2.6, all on 127.0.0.1 (bench/haPostgres.ts, stack/ha/postgres.ts).`,
    `Patroni: ttl ${PATRONI_DCS.ttl}, loop_wait ${PATRONI_DCS.loop_wait}, retry_timeout ${PATRONI_DCS.retry_timeout}, primary_start_timeout ${PATRONI_DCS.primary_start_timeout}, synchronous_mode ${PATRONI_DCS.synchronous_mode}, synchronous_mode_strict ${PATRONI_DCS.synchronous_mode_strict}, failsafe_mode ${PATRONI_DCS.failsafe_mode}; wal_retrieve_retry_interval ${PG_PARAMETERS.wal_retrieve_retry_interval}.`,
    `HAProxy: \`${settings.haproxy}\`, timeout check 2s; checks OPTIONS /primary (read-write) and /replica (read-only) on Patroni's REST API.`,
    '',
    `Gap = fault → first acknowledged INSERT sent after the fault, through HAProxy 127.0.0.1:5440; ${writer}. Lost = acknowledged rows missing when read back after the node rejoined. Rejoin = heal start → the faulted node streams again and the cluster is fully healthy (a synchronous standby recorded). Faults: kill-leader = SIGKILL of the primary's Patroni, postmaster and backends; kill-postgres = SIGKILL of the postmaster (Patroni restarts it in place); stop-node = SIGSTOP of all of them, SIGCONT at heal; planned = Patroni REST switchover.`,
    '',
    '| fault | rounds | gap p50 s | gap p95 s | gap min s | gap max s | rejoin p50 s | rejoin max s | acknowledged writes | lost |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...summary.map((s) => `| ${s.fault} | ${s.rounds} | ${s.p50.toFixed(2)} | ${s.p95.toFixed(2)} | ${s.min.toFixed(2)} | ${s.max.toFixed(2)} | ${s.rejoinP50.toFixed(1)} | ${s.rejoinMax.toFixed(1)} | ${s.acknowledged} | ${s.lost} |`),
    '',
    errors.length ? `Failed rounds (${errors.length}):\n${errors.map((e) => `- ${e}`).join('\n')}` : 'No round failed.',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(outDir, `${name}.md`), md);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      console.error(`bench ha-postgres: ${err.message}`);
      process.exit(1);
    },
  );
}
