// Health of a Patroni-managed PostgreSQL cluster: who is the primary (Patroni's leader lock with
// PostgreSQL running), which replicas stream from it, whether one is synchronous, and each
// replica's replay lag in bytes (the primary's pg_stat_replication, exact at the moment of the
// query, unlike Patroni's DCS view which is up to loop_wait old). vaultHealthCheck folds this in;
// the failover drill's PostgreSQL driver reports it per round.
import { Client } from 'pg';

export interface PgHaNode {
  name: string;
  host: string;
  pgPort: number;
  restPort: number;
}

export interface PgHaTopology {
  nodes: readonly PgHaNode[];
  /** A role that may read pg_stat_replication (superuser or pg_monitor), connected straight to the primary. */
  monitor: { user: string; password: string; database: string };
  /** A replica lagging more than this is a problem (Patroni's maximum_lag_on_failover). */
  maxLagBytes: number;
  /** synchronous_mode: a cluster without a synchronous standby is a problem (writes wait, strict mode). */
  synchronous: boolean;
}

export interface PatroniMember {
  name: string;
  role: string; // leader | replica | sync_standby
  state: string; // running | stopped | starting | crashed ...
  host: string;
  port: number;
  timeline?: number;
  lag?: number | string;
}

export interface ReplicationRow {
  application_name: string;
  state: string;
  sync_state: string;
  lag_bytes: number;
}

export interface PostgresHaHealth {
  healthy: boolean;
  primary?: string;
  replicas: { name: string; state: string; sync: boolean; lagBytes: number }[];
  /** Nodes that are neither the primary nor a streaming replica. */
  down: string[];
  problems: string[];
}

async function getJson<T>(url: string, timeoutMs: number): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.status === 200 ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** GET /cluster from the first Patroni that answers. */
export async function patroniCluster(nodes: readonly PgHaNode[]): Promise<{ members: PatroniMember[] } | undefined> {
  for (const n of nodes) {
    const c = await getJson<{ members: PatroniMember[] }>(`http://${n.host}:${n.restPort}/cluster`, 1500);
    if (c) return c;
  }
  return undefined;
}

/** pg_stat_replication on the primary, with replay lag in bytes. */
export async function replicationRows(primary: PgHaNode, monitor: PgHaTopology['monitor']): Promise<ReplicationRow[]> {
  const c = new Client({ host: primary.host, port: primary.pgPort, ...monitor, connectionTimeoutMillis: 2000, query_timeout: 3000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ application_name: string; state: string; sync_state: string; lag_bytes: string | null }>(
      'SELECT application_name, state, sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes FROM pg_stat_replication',
    );
    return r.rows.map((x) => ({ ...x, lag_bytes: x.lag_bytes === null ? -1 : Number(x.lag_bytes) }));
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Healthy = one running primary, every other node streaming from it within maxLagBytes, and a synchronous standby when synchronous. */
export async function postgresHaHealth(t: PgHaTopology): Promise<PostgresHaHealth> {
  const problems: string[] = [];
  const cluster = await patroniCluster(t.nodes);
  if (!cluster) return { healthy: false, replicas: [], down: t.nodes.map((n) => n.name), problems: ['no Patroni REST API answers'] };
  const leader = cluster.members.find((m) => m.role === 'leader' && m.state === 'running');
  if (!leader) problems.push('no running primary (no Patroni member holds the leader lock with PostgreSQL running)');
  const primary = leader && t.nodes.find((n) => n.name === leader.name);
  let rows: ReplicationRow[] = [];
  if (primary) {
    try {
      rows = await replicationRows(primary, t.monitor);
    } catch (err) {
      problems.push(`cannot read pg_stat_replication on ${primary.name}: ${(err as Error).message}`);
    }
  }
  const replicas: PostgresHaHealth['replicas'] = [];
  const down: string[] = [];
  for (const n of t.nodes) {
    if (n.name === leader?.name) continue;
    const row = rows.find((r) => r.application_name === n.name);
    const member = cluster.members.find((m) => m.name === n.name);
    if (!row || row.state !== 'streaming') {
      down.push(n.name);
      problems.push(`${n.name} is not streaming from the primary (Patroni: ${member ? `${member.role} ${member.state}` : 'not a member'}${row ? `, walsender ${row.state}` : ''})`);
      continue;
    }
    // Synchronous as Patroni records it (its /sync key, shown as role sync_standby): only that node
    // may be promoted automatically. pg_stat_replication's sync_state alone is not enough: with
    // synchronous_standby_names '*' (strict mode, just after a restart) PostgreSQL calls a standby
    // synchronous before Patroni has recorded it, and a primary lost then has no failover target.
    replicas.push({ name: n.name, state: row.state, sync: member?.role === 'sync_standby' && row.sync_state === 'sync', lagBytes: row.lag_bytes });
    if (row.lag_bytes > t.maxLagBytes) problems.push(`${n.name} lags ${row.lag_bytes} bytes behind the primary (more than ${t.maxLagBytes})`);
  }
  if (primary && t.synchronous && !replicas.some((r) => r.sync)) problems.push('no synchronous standby recorded by Patroni: a failover now could not promote anyone (and, strict, writes wait)');
  return { healthy: problems.length === 0, primary: leader?.name, replicas, down, problems };
}
