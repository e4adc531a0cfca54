// Input, updates and results of the drDrill workflow (docs/runbooks/dr-drills.md), shared by the
// workflow, its activities, the report renderer and the CLI. Workflow-safe: no Node built-ins.
import { z } from 'zod';
import { SCENARIO_IDS, type FindingSeverity, type ScenarioId } from './drills';

/** Where drDrill reports live in the backup bucket: drills/runs/<drillId>/report.{json,md,html}. */
export const DRILL_RUN_PREFIX = 'drills/runs/';

/** The steps of a drill, in order; assisted mode asks the facilitator to confirm each before it runs. */
export const DRILL_STEPS = ['checkDrillPreconditions', 'checkSteadyState', 'injectFault', 'awaitDetection', 'recover', 'rebuildCluster', 'restoreLatestBackup', 'verifyRecovery', 'revertFault', 'writeReport'] as const;
export type DrDrillStep = (typeof DRILL_STEPS)[number];
/** Steps the facilitator confirms in assisted mode (the revert is never held back: it always runs). */
export const CONFIRMED_STEPS: readonly DrDrillStep[] = ['checkSteadyState', 'injectFault', 'awaitDetection', 'recover', 'rebuildCluster', 'restoreLatestBackup', 'verifyRecovery', 'writeReport'];

/** The target each scenario breaks (drills.drillableTargets must list it). */
export const SCENARIO_TARGET: Record<ScenarioId, string> = {
  'vault-node-failure': 'ha-vault',
  'cluster-loss': 'ha-vault',
  'vps-compromise': 'mail-vps',
  'credential-compromise': 'credential-class',
};
/** Scenarios drDrill can run today; the others are refused by name (DrillRefused). */
export const AUTOMATED_SCENARIOS: readonly ScenarioId[] = ['vault-node-failure', 'cluster-loss', 'vps-compromise', 'credential-compromise'];

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
    /** credential-compromise: the training incident must be closed within this (a stop condition: the drill aborts and closes it). */
    incidentTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(60),
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
  /**
   * What kind of finding it is, stable across drills and wordings ("rto-exceeded", "not-detected"...):
   * a re-test matches a resolved finding by scenario + kind (findingKindOf for findings opened
   * before kinds existed).
   */
  kind: string;
  title: string;
  severity: FindingSeverity;
  runbookSection: string;
  /** What failed the check, for the report. */
  evidence: string;
}

export interface RetestedFinding {
  findingId: string;
  title: string;
  /** The finding's kind (recorded, or derived from an old finding's title). */
  kind?: string;
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
  /** credential-compromise: what the training incident rotated and what the drill proved itself. */
  credential?: CredentialDrillFacts;
  error?: string;
  /** What the scenario's RTO and revert rows measure, when not the failover's (vps-compromise: declaration → rotated). */
  labels?: { rto?: string; rpo?: string; revert?: string };
  /** Recovery phases with their durations (vps-compromise: the migration's steps, each rotation). */
  phases?: { what: string; ms: number }[];
  /** Checks that prove recovery; a failed one is a finding. */
  checks?: { what: string; ok: boolean; detail: string }[];
}

/** The credential-compromise drill's own facts (KV versions and verdicts, never a value). */
export interface CredentialDrillFacts {
  credentialClass: string;
  scope: string;
  /** Where the credential lives (a KV v2 path). */
  kvPath: string;
  /** The KV version the steady state logged in with (the one declared leaked), and the one after the rotation. */
  versionBefore: number;
  versionAfter?: number;
  /** The training breachResponse the drill declared (its workflow id) and its incident id. */
  incidentWorkflowId: string;
  incidentId?: string;
  /** rotateCredential's own verdict, as breachResponse recorded it. */
  rotation?: { rotated: boolean; newVerified: boolean; oldRefused: boolean; detail: string };
  /** The rotation child's run: breachResponse entering "rotate" → its rotateCredential recorded, ms. */
  rotationMs?: number;
  /** The drill's own probes after the incident: a login with the new version works, with the old is refused. */
  newWorks?: boolean;
  oldRefused?: boolean;
  probeDetail?: string;
  /** Tenant notices: prepared (one per tenant in the registry), sent, and all marked TRAINING. */
  tenants?: number;
  noticesSent?: number;
  noticesTraining?: boolean;
  /** Who answered the incident (automated: the drill's responder activity) and how it ended. */
  responderActions?: string[];
  closed?: string;
}

/** Kinds of the findings opened before kinds were recorded, from their (unchanged) titles. */
const LEGACY_TITLE_KINDS: [RegExp, string][] = [
  [/: acknowledged writes lost in the failover$/, 'lost-writes'],
  [/: recovery slower than the RTO target$/, 'rto-exceeded'],
  [/: the fault was not detected \(/, 'not-detected'],
  [/: detection slower than its target \(/, 'slow-detection'],
  [/: \S+ not routed to \S+$/, 'misrouted'],
];

/** A finding's stable kind: the recorded one, else derived from an old finding's title (undefined when unknown). */
export function findingKindOf(f: { kind?: string; title: string }): string | undefined {
  return f.kind ?? LEGACY_TITLE_KINDS.find(([re]) => re.test(f.title))?.[1];
}

/** Whether a drill's new draft is the same finding as an earlier one of the scenario: same kind, or (kind unknown) the same title. */
export function sameFinding(draft: Pick<DrillFindingDraft, 'kind' | 'title'>, earlier: { kind?: string; title: string }): boolean {
  const k = findingKindOf(earlier);
  return k ? k === draft.kind : earlier.title === draft.title;
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
