// The PostgreSQL HA check of vaultHealthCheck and vaultHealthMonitor: Patroni's view of the
// cluster and the primary's pg_stat_replication (infra/postgres/haHealth.ts), as a health report.
// Where no PostgreSQL HA cluster is configured it reports nothing (null), so the check is part of
// every run without making a single-node installation unhealthy.
import type { PgHaTopology } from '../../infra/postgres/haHealth';
import { postgresHaHealth } from '../../infra/postgres/haHealth';
import type { PostgresHaReport } from '../../common/health';

export async function postgresHaReport(t: PgHaTopology): Promise<PostgresHaReport> {
  const h = await postgresHaHealth(t);
  const status = !h.primary ? 'unhealthy' : h.healthy ? 'healthy' : 'degraded';
  return { status, primary: h.primary, replicas: h.replicas, down: h.down, expectedReplicas: t.nodes.length - 1, maxLagBytes: t.maxLagBytes, problems: h.problems };
}

export const postgresHaActivities = (deps: { topology: () => PgHaTopology | undefined }) => ({
  /** The HA PostgreSQL cluster's primary, replicas and lag; null where none is configured. */
  async checkPostgresHa(): Promise<PostgresHaReport | null> {
    const t = deps.topology();
    return t ? postgresHaReport(t) : null;
  },
});

export type PostgresHaActivities = ReturnType<typeof postgresHaActivities>;
