// Input schema and result types of the failoverDrill workflow (docs/runbooks/ha-failover.md),
// shared by the workflow, its activities and the CLI. Workflow-safe: no Node built-ins.
import { z } from 'zod';
// Types only: infra/ha/driver.ts is the HA contract (shared verbatim with the PostgreSQL driver) and has no runtime code.
// eslint-disable-next-line no-restricted-imports
import type { ClusterHealth, HaFault, HaTarget, InjectedFault } from '../infra/ha/driver';

/** Where publishDrillReport puts reports (in the backup bucket); latest.json feeds the metrics. */
export const DRILL_REPORT_PREFIX = 'drills/failover/';

export const HA_TARGETS = ['vault', 'postgres'] as const satisfies readonly HaTarget[];
export const HA_FAULTS = ['kill-leader', 'kill-postgres', 'stop-node', 'planned'] as const satisfies readonly HaFault[];
/** Faults a target knows; kill-postgres (postmaster only, Patroni restarts it) exists for postgres only. */
export const FAULTS_OF: Record<HaTarget, readonly HaFault[]> = {
  vault: ['kill-leader', 'stop-node', 'planned'],
  postgres: ['kill-leader', 'kill-postgres', 'stop-node', 'planned'],
};

export const FailoverDrillInput = z
  .object({
    /** Which clusters to drill, one after the other. */
    targets: z.array(z.enum(HA_TARGETS)).nonempty().default(['vault']),
    /** Faults to inject; each target gets the ones it knows (FAULTS_OF). Default: every Vault fault. */
    faults: z.array(z.enum(HA_FAULTS)).nonempty().default(['kill-leader', 'stop-node', 'planned']),
    /** Rounds per target and fault. */
    rounds: z.number().int().min(1).max(50).default(1),
    /** A round whose first successful write takes longer than this fails (the cluster did not fail over). */
    maxGapSeconds: z.number().int().min(5).max(600).default(60),
    /** How long the faulted node may take to come back and the cluster to be fully healthy again. */
    healTimeoutSeconds: z.number().int().min(10).max(1800).default(180),
    /** Why the drill runs (shown in the report and the Web UI). */
    reason: z.string().max(200).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    v.faults.forEach((f, i) => {
      if (!v.targets.some((t) => FAULTS_OF[t].includes(f))) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['faults', i], message: `${f} applies to ${HA_TARGETS.filter((t) => FAULTS_OF[t].includes(f)).join(', ')} only, not to ${v.targets.join(', ')}` });
      }
    });
  });
export type FailoverDrillInput = z.input<typeof FailoverDrillInput>;

export interface RoundResult {
  target: HaTarget;
  fault: HaFault;
  round: number;
  /** The node the fault hit. */
  node: string;
  injectedAt: string;
  /** Fault → first acknowledged write through HAProxy, ms. */
  gapMs: number;
  writesAcked: number;
  writesFailed: number;
  /** Acknowledged writes not found afterwards: must be 0. */
  lost: number;
  /** Heal (restart/SIGCONT/none) until the cluster is fully healthy again, ms. */
  healMs: number;
  clientErrors: string[];
}

export interface GapStats {
  target: HaTarget;
  fault: HaFault;
  rounds: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  lostWrites: number;
}

export interface FailoverDrillResult {
  drillId: string;
  startedAt: string;
  finishedAt: string;
  rounds: RoundResult[];
  stats: GapStats[];
  lostWrites: number;
  reportJsonKey?: string;
  reportMarkdownKey?: string;
}

export interface RoundOutcome {
  injected: InjectedFault;
  gapMs: number;
  writesAcked: number;
  writesFailed: number;
  lost: number;
  clientErrors: string[];
}

export type { ClusterHealth, HaFault, HaTarget, InjectedFault };

/** Nearest-rank percentiles; workflow-safe (the workflow computes the result's stats). */
export function gapStats(rounds: RoundResult[]): GapStats[] {
  const keys = [...new Set(rounds.map((r) => `${r.target}/${r.fault}`))];
  return keys.map((k) => {
    const rs = rounds.filter((r) => `${r.target}/${r.fault}` === k);
    const s = rs.map((r) => r.gapMs).sort((a, b) => a - b);
    const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
    return { target: rs[0]!.target, fault: rs[0]!.fault, rounds: rs.length, p50Ms: rank(50), p95Ms: rank(95), maxMs: s[s.length - 1] ?? 0, lostWrites: rs.reduce((a, r) => a + r.lost, 0) };
  });
}
