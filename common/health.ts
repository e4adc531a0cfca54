// Types and input schema of the vaultHealthCheck workflow, shared by the workflow, its
// activities and the CLI. Workflow-safe.
import { z } from 'zod';

export const HealthCheckInput = z
  .object({
    /** Which checks to run; all by default ('postgres' reports only where PostgreSQL HA is configured). */
    checks: z.array(z.enum(['vault', 'objectStore', 'mail', 'postgres'])).nonempty().default(['vault', 'objectStore', 'mail', 'postgres']),
    /** Raft peers the operator expects; a smaller voter count is reported as degraded. */
    expectedRaftPeers: z.number().int().min(1).max(15).default(1),
  })
  .strict();
export type HealthCheckInput = z.input<typeof HealthCheckInput>;

export type CheckStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface RaftPeer {
  nodeId: string;
  address: string;
  leader: boolean;
  voter: boolean;
}

/** One raft server as autopilot sees it (HA clusters: every node, not only the one vault.address reaches). */
export interface VaultNodeHealth {
  nodeId: string;
  /** Cluster address (raft). */
  address: string;
  /** leader | voter | non-voter, as autopilot says. */
  status: string;
  healthy: boolean;
  lastContact: string;
}

export interface VaultHealth {
  status: CheckStatus;
  reachable: boolean;
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version: string;
  clusterName: string;
  clusterId: string;
  /** Raft leader address as reported by the node, '' when unknown. */
  leaderAddress: string;
  raftPeers: RaftPeer[];
  /** Every raft server's health and the leader, from autopilot (absent when it could not be read). */
  nodes?: VaultNodeHealth[];
  autopilot?: { healthy: boolean; failureTolerance: number; leader: string };
  problems: string[];
}

export interface ObjectStoreHealth {
  status: CheckStatus;
  endpoint: string;
  bucket: string;
  bucketExists: boolean;
  problems: string[];
}

export interface MailHealth {
  status: CheckStatus;
  host: string;
  port: number;
  problems: string[];
}

/**
 * The HA PostgreSQL cluster (Patroni; infra/postgres/haHealth.ts): its primary, the replicas
 * streaming from it with their replay lag, the nodes that are neither. Degraded when a replica is
 * missing or lags more than maxLagBytes (Patroni's maximum_lag_on_failover: past it a replica can
 * no longer be promoted), unhealthy without a primary.
 */
export interface PostgresHaReport {
  status: CheckStatus;
  primary?: string;
  replicas: { name: string; state: string; sync: boolean; lagBytes: number }[];
  /** Nodes that are neither the primary nor a streaming replica. */
  down: string[];
  expectedReplicas: number;
  maxLagBytes: number;
  problems: string[];
}

export interface HealthReport {
  status: CheckStatus;
  checkedAt: string;
  vault?: VaultHealth;
  objectStore?: ObjectStoreHealth;
  mail?: MailHealth;
  postgres?: PostgresHaReport;
}

/** Overall status is the worst of the parts. */
export function worstStatus(parts: CheckStatus[]): CheckStatus {
  if (parts.includes('unhealthy')) return 'unhealthy';
  if (parts.includes('degraded')) return 'degraded';
  return 'healthy';
}
