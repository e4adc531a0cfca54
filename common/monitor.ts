// vaultHealthMonitor's input, the facts one check gathers, and the pure rules that turn facts into
// problems. Workflow-safe. The alert names match the Prometheus rules (deploy/prometheus/rules) so
// an operator sees the same name from either path, and docs/runbooks/monitoring.md covers both.
import { z } from 'zod';
import type { Severity } from './alerts';
import type { PostgresHaReport, VaultHealth } from './health';

export const MonitorInput = z
  .object({
    /** Seconds between checks. */
    intervalSeconds: z.number().min(1).max(3600).default(60),
    /** Raft voters the operator expects; fewer is VaultRaftPeerDown. */
    expectedRaftPeers: z.number().int().min(1).max(15).default(1),
    /** A newest verified backup older than this is BackupStale. */
    backupMaxAgeHours: z.number().positive().max(24 * 31).default(26),
    /** A newest successful restore validation older than this is RestoreValidationStale. */
    validationMaxAgeDays: z.number().positive().max(90).default(8),
    /** Consecutive clean checks before a problem counts as resolved (damps flapping). */
    clearAfterChecks: z.number().int().min(1).max(60).default(2),
    /** Checks per run before continue-as-new (history stays small); earlier if Temporal suggests it. */
    checksPerRun: z.number().int().min(1).max(10_000).default(500),
    /** Carried over by continue-as-new: the alerts currently open. Not for operators to set. */
    carried: z
      .object({
        open: z.record(
          z.object({
            incidentKey: z.string(),
            severity: z.enum(['critical', 'warning', 'info']),
            summary: z.string(),
            since: z.string(),
            delivered: z.boolean(),
            cleanChecks: z.number().int().min(0),
          }),
        ),
        checks: z.number().int().min(0),
      })
      .optional(),
  })
  .strict();
export type MonitorInput = z.input<typeof MonitorInput>;

/** The durable recovery state (from S3): newest verified backup and staging restore validations. */
export interface DrState {
  /** false when the bucket could not be listed (the other fields are then unknown). */
  storeUp: boolean;
  storeError?: string;
  /** Unix seconds of the newest verified backup's creation. */
  lastVerifiedAt?: number;
  lastVerifiedBytes?: number;
  verified: number;
  unverified: number;
  /** The newest staging restore (weekly validation or on demand); production restores include waiting for people and are not a measure of RTO. */
  lastValidation?: { at: number; ok: boolean; rto?: number; rpo: number; backupId: string; error?: string };
  /** Unix seconds of the newest successful staging validation. */
  lastValidationOkAt?: number;
  /** Backups whose object is no longer the version their manifest pins (overwritten, deleted). */
  damagedBackups?: { backupId: string; problem: string }[];
  /** How the bucket's settings differ from what `vaultdr bucket apply` sets (read-only check). */
  bucketDifferences?: string[];
}

export interface AutopilotFacts {
  /** undefined when the state could not be read (reason in error). */
  healthy?: boolean;
  failureTolerance?: number;
  unhealthyServers: string[];
  error?: string;
}

export interface MonitorFacts {
  vault: VaultHealth;
  autopilot: AutopilotFacts;
  dr: DrState;
  /** The HA PostgreSQL cluster, where one is configured. */
  postgres?: PostgresHaReport;
}

export interface Problem {
  /** The alert name, stable for as long as the problem lasts. */
  key: string;
  severity: Severity;
  summary: string;
}

export interface Thresholds {
  expectedRaftPeers: number;
  backupMaxAgeHours: number;
  validationMaxAgeDays: number;
}

const hours = (s: number) => `${(s / 3600).toFixed(1)} h`;

/** Every problem the facts show at `nowSeconds`. Pure. */
export function evaluate(f: MonitorFacts, t: Thresholds, nowSeconds: number): Problem[] {
  const out: Problem[] = [];
  const v = f.vault;
  if (!v.reachable) out.push({ key: 'VaultUnreachable', severity: 'critical', summary: `OpenBao does not answer: ${v.problems[0] ?? 'no response'}` });
  else if (!v.initialized) out.push({ key: 'VaultNotInitialized', severity: 'critical', summary: 'OpenBao is not initialized' });
  else if (v.sealed) out.push({ key: 'VaultSealed', severity: 'critical', summary: 'OpenBao is sealed: secrets are unavailable until it is unsealed' });
  else {
    const noLeader = (v.raftPeers.length > 0 && !v.raftPeers.some((p) => p.leader)) || (v.standby && !v.leaderAddress);
    if (noLeader) out.push({ key: 'VaultNoActiveNode', severity: 'critical', summary: 'OpenBao has no active node (raft lost its leader)' });
    const voters = v.raftPeers.filter((p) => p.voter).length;
    if (v.raftPeers.length > 0 && voters < t.expectedRaftPeers) out.push({ key: 'VaultRaftPeerDown', severity: 'warning', summary: `raft has ${voters} voter(s), expected ${t.expectedRaftPeers}` });
    else if (f.autopilot.healthy === false) out.push({ key: 'VaultRaftPeerDown', severity: 'warning', summary: `autopilot reports unhealthy server(s): ${f.autopilot.unhealthyServers.join(', ') || 'unknown'}` });
  }
  const pg = f.postgres;
  if (pg) {
    // The same names as the Prometheus rules on Patroni's metrics (and so the same cards).
    if (!pg.primary) out.push({ key: 'PostgresNoPrimary', severity: 'critical', summary: `the PostgreSQL HA cluster has no primary: ${pg.problems[0] ?? 'no Patroni member holds the leader lock'}` });
    else {
      if (pg.replicas.length < pg.expectedReplicas) out.push({ key: 'PostgresReplicaDown', severity: 'warning', summary: `${pg.replicas.length} of ${pg.expectedReplicas} PostgreSQL replicas stream from ${pg.primary}; not streaming: ${pg.down.join(', ')}` });
      const lagging = pg.replicas.filter((r) => r.lagBytes > pg.maxLagBytes);
      if (lagging.length) out.push({ key: 'ReplicationLagHigh', severity: 'warning', summary: `PostgreSQL replica(s) lag more than ${pg.maxLagBytes} bytes (past it Patroni will not promote them): ${lagging.map((r) => `${r.name} ${r.lagBytes} B`).join(', ')}` });
    }
  }
  const d = f.dr;
  if (!d.storeUp) {
    out.push({ key: 'BackupStoreUnreachable', severity: 'warning', summary: `the backup bucket cannot be listed: ${d.storeError ?? 'unknown error'}` });
    return out;
  }
  if (d.damagedBackups?.length) out.push({ key: 'BackupObjectOverwritten', severity: 'critical', summary: `backup object(s) no longer the version their manifest pins: ${d.damagedBackups.slice(0, 5).map((b) => `${b.backupId} (${b.problem})`).join('; ')}${d.damagedBackups.length > 5 ? ` and ${d.damagedBackups.length - 5} more` : ''}` });
  if (d.bucketDifferences?.length) out.push({ key: 'BackupBucketNotCompliant', severity: 'warning', summary: `the backup bucket differs from \`vaultdr bucket apply\`: ${d.bucketDifferences.join('; ')}` });
  if (d.lastVerifiedAt === undefined) out.push({ key: 'BackupMissing', severity: 'critical', summary: 'the backup bucket holds no verified backup' });
  else if (nowSeconds - d.lastVerifiedAt > t.backupMaxAgeHours * 3600) out.push({ key: 'BackupStale', severity: 'critical', summary: `the newest verified backup is ${hours(nowSeconds - d.lastVerifiedAt)} old (limit ${t.backupMaxAgeHours} h)` });
  if (d.lastValidation && !d.lastValidation.ok) out.push({ key: 'RestoreValidationFailed', severity: 'critical', summary: `the last restore validation (backup ${d.lastValidation.backupId}) failed: ${d.lastValidation.error ?? 'see restore history'}` });
  if (d.lastValidationOkAt === undefined) out.push({ key: 'RestoreValidationNeverSucceeded', severity: 'warning', summary: 'no restore validation has ever succeeded' });
  else if (nowSeconds - d.lastValidationOkAt > t.validationMaxAgeDays * 86400) out.push({ key: 'RestoreValidationStale', severity: 'warning', summary: `no successful restore validation for ${(Math.floor((nowSeconds - d.lastValidationOkAt) / 3600) / 24).toFixed(1)} days (limit ${t.validationMaxAgeDays})` });
  return out;
}

/**
 * Alerts whose condition the facts cannot judge this time (the system they depend on could not
 * be read): an open one of these stays open instead of counting as a clean check.
 */
export function undecidable(f: MonitorFacts): (key: string) => boolean {
  const vaultBlind = !f.vault.reachable || !f.vault.initialized || f.vault.sealed;
  return (key) =>
    (!f.dr.storeUp && /^(Backup|Restore)/.test(key) && key !== 'BackupStoreUnreachable') ||
    (vaultBlind && (key === 'VaultNoActiveNode' || key === 'VaultRaftPeerDown'));
}
