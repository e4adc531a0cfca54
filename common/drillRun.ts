// Input, updates and results of the drDrill workflow (docs/runbooks/dr-drills.md), shared by the
// workflow, its activities, the report renderer and the CLI. Workflow-safe: no Node built-ins.
import { z } from 'zod';
import { SCENARIO_IDS, type FindingSeverity, type ScenarioId } from './drills';

/** Where drDrill reports live in the backup bucket: drills/runs/<drillId>/report.{json,md,html}. */
export const DRILL_RUN_PREFIX = 'drills/runs/';

/** The steps of a drill, in order; assisted mode asks the facilitator to confirm each before it runs. */
export const DRILL_STEPS = ['checkDrillPreconditions', 'checkSteadyState', 'injectFault', 'awaitDetection', 'rebuildCluster', 'restoreLatestBackup', 'verifyRecovery', 'revertFault', 'writeReport'] as const;
export type DrDrillStep = (typeof DRILL_STEPS)[number];
/** Steps the facilitator confirms in assisted mode (the revert is never held back: it always runs). */
export const CONFIRMED_STEPS: readonly DrDrillStep[] = ['checkSteadyState', 'injectFault', 'awaitDetection', 'rebuildCluster', 'restoreLatestBackup', 'verifyRecovery', 'writeReport'];

/** The target each scenario breaks (drills.drillableTargets must list it). */
export const SCENARIO_TARGET: Record<ScenarioId, string> = {
  'vault-node-failure': 'ha-vault',
  'cluster-loss': 'ha-vault',
  'vps-compromise': 'mail-vps',
  'credential-compromise': 'credential-class',
};
/** Scenarios drDrill can run today; the others are refused by name (DrillRefused). */
export const AUTOMATED_SCENARIOS: readonly ScenarioId[] = ['vault-node-failure', 'cluster-loss'];

export const DrDrillInput = z
  .object({
    scenario: z.enum(SCENARIO_IDS).default('vault-node-failure'),
    /** automated: the drill runs every step itself; assisted: a facilitator confirms each step (update confirmStep) and may abort. */
    mode: z.enum(['automated', 'assisted']).default('automated'),
    /** Why the drill runs (report, Web UI). */
    reason: z.string().trim().max(200).optional(),
    facilitator: z.string().trim().min(1).max(100).optional(),
    /** How long the drill waits for the scenario's alert after the fault; default: the scenario's detection target + 60 s. */
    detectionTimeoutSeconds: z.number().int().min(10).max(3600).optional(),
    /** Assisted mode: how long a step may wait for the facilitator before the drill aborts (the fault is reverted). */
    confirmTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(120),
    /** A write gap longer than this is a stop condition (the drill aborts and reverts). */
    maxGapSeconds: z.number().int().min(5).max(600).default(60),
    healTimeoutSeconds: z.number().int().min(10).max(1800).default(180),
    /** cluster-loss: how long the recovery (new cluster, approved restore, unseal) may take before the drill fails and reverts. */
    recoveryTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(60),
  })
  .strict();
export type DrDrillInput = z.input<typeof DrDrillInput>;

export const ConfirmStepUpdate = z.object({ step: z.enum(DRILL_STEPS), by: z.string().trim().min(1).max(100) }).strict();
export const AbortUpdate = z.object({ by: z.string().trim().min(1).max(100), reason: z.string().trim().min(1).max(500) }).strict();

export interface TimelineEvent {
  /** ISO time. */
  at: string;
  kind: 'step' | 'fault' | 'recovered' | 'alert' | 'revert' | 'finding' | 'abort' | 'confirm';
  what: string;
}

export interface AlertObservation {
  observed: boolean;
  alertname: string;
  /** When the alert started firing (Alertmanager's startsAt), ISO. */
  startsAt?: string;
  /** When the drill first saw it in Alertmanager, ISO. */
  seenAt?: string;
  receivers: string[];
  labels?: Record<string, string>;
  /** What the drill looked at ("http://127.0.0.1:9093/api/v2/alerts"), for the report. */
  source: string;
  /** Other vault-dr alerts firing during the window (names), for the report. */
  others: string[];
}

export interface DrillFindingDraft {
  title: string;
  severity: FindingSeverity;
  runbookSection: string;
  /** What failed the check, for the report. */
  evidence: string;
}

export interface RetestedFinding {
  findingId: string;
  title: string;
  /** Whether the same kind of finding came back in this drill. */
  passed: boolean;
}

export interface DrDrillReport {
  drillId: string;
  scenario: ScenarioId;
  mode: 'automated' | 'assisted';
  reason?: string;
  facilitator?: string;
  startedAt: string;
  finishedAt: string;
  outcome: 'passed' | 'findings' | 'aborted' | 'failed';
  /** The node the fault hit and when. */
  fault?: { node: string; injectedAt: string; kind: string };
  /** Fault → first acknowledged write (the service's recovery), ms; the RTO measured. */
  rtoMs?: number;
  /** Acknowledged writes lost (RPO: 0 writes = 0 s of data). */
  lostWrites?: number;
  writesAcked?: number;
  writesFailed?: number;
  /** Fault → alert firing, ms (time to detect). */
  detectMs?: number;
  alert?: AlertObservation;
  /** Heal (revert) until fully healthy, ms. */
  revertMs?: number;
  /** cluster-loss: the newest verified backup at the steady-state check (its age is the RPO before the fault). */
  backup?: { backupId: string; createdAt: string; ageSeconds: number };
  /** cluster-loss: fault time − the restored backup's snapshot time, ms (the writes of that window are lost). */
  rpoMs?: number;
  /** cluster-loss: the restore that recovered (no secret: ids, times, who approved). */
  restore?: { workflowId: string; backupId: string; snapshotCreatedAt: string; requestedBy: string; approvedBy?: string; verifiedAt?: string; canaryMatches?: boolean; kvMatches?: boolean };
  /** How long each step took, ms, in the order they ran. */
  stepDurations?: { step: string; ms: number }[];
  targets: { rtoSeconds: number; rpoSeconds: number; detectSeconds: number; alert: string; channel: string };
  timeline: TimelineEvent[];
  findings: (DrillFindingDraft & { workflowId?: string })[];
  retested: RetestedFinding[];
  /** Runbooks the scenario exercises (the report links them). */
  runbooks: string[];
  error?: string;
}

export interface DrDrillResult {
  drillId: string;
  outcome: DrDrillReport['outcome'];
  reportKeys?: { json: string; markdown: string; html: string };
  findings: string[];
  rtoMs?: number;
  detectMs?: number;
  lostWrites?: number;
  /** cluster-loss: the data-loss window (fault − snapshot time of the restored backup), ms. */
  rpoMs?: number;
}
