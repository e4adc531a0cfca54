// The failover drill's PostgreSQL driver (infra/ha/driver.ts, target 'postgres'): sequence-numbered
// inserts through HAProxy's read-write port, faults injected into the Patroni node that is the
// primary, and healing that waits until the node streams from the (possibly new) primary again.
// Faults are signals to local processes (the HA harness, or a host the worker runs on), given by a
// PgNodeControl; the planned switchover goes through Patroni's REST API.
//
// Every step is stateless across driver instances (an activity retried on another worker, or
// after a worker crash, can heal a fault another instance injected): heal finds the node's
// processes again from the fault's node name.
import { Pool } from 'pg';
import { failure } from '../../common/errors';
import type { ClusterHealth, HaDriver, HaFault, InjectedFault, NodeHealth } from '../ha/driver';
import { patroniCluster, postgresHaHealth, type PgHaTopology } from './haHealth';

export interface PgNodeControl {
  patroniPid(node: string): number | undefined;
  postmasterPid(node: string): number | undefined;
  childPids(pid: number): number[];
  /** Starts the node's Patroni (which starts PostgreSQL); resolves once PostgreSQL runs. */
  startPatroni(node: string): Promise<void>;
}

export interface PostgresHaDriverOptions {
  /** HAProxy's read-write listener and the application role that owns the drill table. */
  connection: { host: string; port: number; user: string; password: string; database: string };
  topology: PgHaTopology;
  control: PgNodeControl;
  /** A write not acknowledged within this is abandoned (it counts as not acknowledged). Default 3 s. */
  writeTimeoutMs?: number;
  /** Connections to HAProxy (default 4); a prober with many writes in flight needs more. */
  poolSize?: number;
}

export class PostgresDrillError extends Error {
  override name = 'PostgresDrillError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number | undefined, sig: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

export function postgresHaDriver(opts: PostgresHaDriverOptions): HaDriver {
  const timeout = opts.writeTimeoutMs ?? 3000;
  // Small pool, short timeouts: a connection to a dead or hung primary fails fast and the next
  // write opens a new one through HAProxy, which by then may route to the new primary.
  const pool = new Pool({ ...opts.connection, max: opts.poolSize ?? 4, connectionTimeoutMillis: timeout, query_timeout: timeout, idleTimeoutMillis: 10_000 });
  // Idle clients whose server went away emit 'error' on the pool; they are discarded.
  pool.on('error', () => undefined);
  const { topology, control } = opts;

  async function currentPrimary(): Promise<string> {
    const c = await patroniCluster(topology.nodes);
    const leader = c?.members.find((m) => m.role === 'leader' && m.state === 'running');
    if (!leader) throw failure('HaDrillRefused', 'postgres: no running PostgreSQL primary to inject a fault into (the cluster is not healthy)');
    return leader.name;
  }

  /** Patroni, the postmaster and every postmaster child of a node. */
  function nodePids(node: string): number[] {
    const patroni = control.patroniPid(node);
    const pm = control.postmasterPid(node);
    return [patroni, pm, ...(pm === undefined ? [] : control.childPids(pm))].filter((p): p is number => p !== undefined);
  }

  return {
    target: 'postgres',

    async health(): Promise<ClusterHealth> {
      const h = await postgresHaHealth(topology);
      const nodes: NodeHealth[] = topology.nodes.map((n) => {
        if (n.name === h.primary) return { name: n.name, role: 'leader', healthy: true };
        const r = h.replicas.find((x) => x.name === n.name);
        if (r) return { name: n.name, role: 'replica', healthy: r.lagBytes <= topology.maxLagBytes, lagBytes: r.lagBytes, detail: r.sync ? 'synchronous standby' : 'streaming' };
        return { name: n.name, role: 'down', healthy: false, detail: h.problems.find((p) => p.startsWith(`${n.name} `)) };
      });
      return { target: 'postgres', healthy: h.healthy, leader: h.primary, nodes, problems: h.problems };
    },

    async write(round: string, seq: number): Promise<void> {
      // Idempotent: a retried sequence number whose first attempt did commit is not an error.
      await pool.query('INSERT INTO ha_drill (round, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING', [round, seq]);
    },

    async missing(round: string, seqs: number[]): Promise<number[]> {
      // Read back through the read-write port, i.e. from the current primary; retried while a
      // failover is still settling.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          const r = await pool.query<{ seq: number }>('SELECT seq FROM ha_drill WHERE round = $1 AND seq = ANY($2::int[])', [round, seqs]);
          const present = new Set(r.rows.map((x) => x.seq));
          return seqs.filter((s) => !present.has(s));
        } catch (err) {
          if (Date.now() > deadline) throw new PostgresDrillError(`cannot read the drill rows back through HAProxy: ${(err as Error).message}`);
          await sleep(500);
        }
      }
    },

    async inject(fault: HaFault): Promise<InjectedFault> {
      const node = await currentPrimary();
      switch (fault) {
        case 'kill-leader': {
          // A host crash: Patroni first (so it cannot react), then the postmaster and its children.
          const pids = nodePids(node);
          if (pids.length === 0) throw new PostgresDrillError(`${node}: no Patroni or PostgreSQL process found`);
          const at = Date.now();
          for (const pid of pids) signal(pid, 'SIGKILL');
          return { target: 'postgres', fault, node, pid: control.patroniPid(node) ?? pids[0], at };
        }
        case 'kill-postgres': {
          const pm = control.postmasterPid(node);
          if (pm === undefined) throw new PostgresDrillError(`${node}: no postmaster found`);
          const at = Date.now();
          signal(pm, 'SIGKILL');
          return { target: 'postgres', fault, node, pid: pm, at };
        }
        case 'stop-node': {
          // A hung host: every process of the node frozen, sockets left open.
          const pids = nodePids(node);
          if (pids.length === 0) throw new PostgresDrillError(`${node}: no Patroni or PostgreSQL process found`);
          const at = Date.now();
          for (const pid of pids) signal(pid, 'SIGSTOP');
          return { target: 'postgres', fault, node, pid: pids[0], at };
        }
        case 'planned': {
          const n = topology.nodes.find((x) => x.name === node)!;
          const at = Date.now();
          // No candidate: in synchronous mode Patroni picks the synchronous standby, the only
          // node that certainly has every acknowledged commit.
          const res = await fetch(`http://${n.host}:${n.restPort}/switchover`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ leader: node }), signal: AbortSignal.timeout(60_000) });
          const text = await res.text();
          if (res.status !== 200) throw new PostgresDrillError(`Patroni refused the switchover from ${node} (HTTP ${res.status}): ${text}`);
          return { target: 'postgres', fault, node, at };
        }
        default:
          throw new PostgresDrillError(`unknown fault ${String(fault)}`);
      }
    },

    async heal(f: InjectedFault, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      if (f.fault === 'stop-node') {
        // SIGCONT is harmless to running processes, so it is sent to whatever the node runs now.
        for (const pid of nodePids(f.node)) signal(pid, 'SIGCONT');
      } else if (f.fault === 'kill-leader' && control.patroniPid(f.node) === undefined) {
        await control.startPatroni(f.node);
      }
      // kill-postgres: Patroni restarts PostgreSQL itself; planned: nothing was broken.
      let last = await this.health();
      while (Date.now() < deadline) {
        const me = last.nodes.find((n) => n.name === f.node);
        if (last.healthy && me && me.role !== 'down') return;
        await sleep(500);
        last = await this.health();
      }
      throw failure('HaNodeDidNotRejoin', `postgres: ${f.node} did not rejoin the cluster within ${Math.round(timeoutMs / 1000)}s after ${f.fault}: ${last.problems.join('; ') || 'no problem reported'}`);
    },

    async close(): Promise<void> {
      await pool.end();
    },
  };
}
