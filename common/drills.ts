// Disaster-recovery drills: the scenario catalogue (docs/drills/scenarios.md is generated from it
// by `npm run docs:drills` and checked by test/drills.test.ts) and the remediation findings a drill
// leaves behind. Workflow-safe (no Node imports): the workflows import it.
import { z } from 'zod';

export const SCENARIO_IDS = ['vault-node-failure', 'cluster-loss', 'vps-compromise', 'credential-compromise'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** "When <fault>, <system> will <behaviour>, <metric> stays within <bound>." */
  hypothesis: string;
  /** Probes that must all hold before the fault is injected (and again after recovery). */
  steadyState: string[];
  /** What the drill breaks, and how. */
  fault: string;
  /** Conditions that abort the drill and revert the fault at once. */
  stopConditions: string[];
  /** What must notice the fault, on which channel, within how long. */
  detection: { alert: string; channel: string; withinSeconds: number };
  /** The workflow(s) that recover, and how. */
  recovery: string;
  /** Checks that prove recovery. */
  checks: string[];
  targets: { rtoSeconds: number; rpoSeconds: number };
  /** What the installation must have before this drill can run (its schedule is created paused until then). */
  prerequisites: string[];
  /** The quarterly schedule: cron in UTC, and whether `vaultdr schedules apply` creates it running. */
  schedule: { cron: string; enabledByDefault: boolean };
  /** The runbooks the drill exercises (a finding names a section of one of these). */
  runbooks: string[];
}

export const SCENARIOS: Record<ScenarioId, Scenario> = {
  'vault-node-failure': {
    id: 'vault-node-failure',
    title: 'The leader of the HA OpenBao cluster dies',
    hypothesis: 'When the active OpenBao node is killed (SIGKILL), a standby takes over and writes through HAProxy succeed again within 10 s, with no acknowledged write lost.',
    steadyState: ['three raft voters, one leader, autopilot healthy', 'HAProxy sees exactly one active Vault backend', 'a KV write and read through HAProxy succeed', 'the newest verified backup is younger than 26 h'],
    fault: 'SIGKILL of the active node (failoverDrill, fault kill-leader), then the node is restarted, unsealed and rejoins',
    stopConditions: ['a second node becomes unhealthy (quorum at risk)', 'no write succeeds through HAProxy for 60 s', 'the facilitator aborts (assisted mode)'],
    detection: { alert: 'VaultHaNodeDown', channel: 'slack', withinSeconds: 120 },
    recovery: 'automatic raft election; failoverDrill heals the node and waits for full health',
    checks: ['every acknowledged write present', 'raft failure tolerance back to 1', 'the audit canary is logged by the node that served it'],
    targets: { rtoSeconds: 10, rpoSeconds: 0 },
    prerequisites: ['an HA cluster of three OpenBao nodes behind HAProxy (docs/runbooks/ha-failover.md)'],
    schedule: { cron: '0 9 5 1,4,7,10 *', enabledByDefault: true },
    runbooks: ['docs/runbooks/ha-failover.md'],
  },
  'cluster-loss': {
    id: 'cluster-loss',
    title: "Every node's data is gone",
    hypothesis: 'When every OpenBao node of the cluster loses its process and its data, a new cluster restored from the latest verified backup through the production-restore approval path serves the canary secret within 60 min, losing at most the writes since that backup.',
    steadyState: ['the drill cluster is healthy (three raft voters, one leader, HAProxy routes to it)', 'a verified backup younger than 26 h exists', "the backed-up cluster's unseal shares are with their custodians (restore.unsealSharesFile on the restore host)"],
    fault: "every node of the drill cluster is SIGKILLed and its storage and audit log are removed (only a cluster the configuration marks drillable, and only when restore.productionAddress points at it)",
    stopConditions: ['the target is not marked drillable', 'restore.productionAddress is not the drill cluster', 'no verified backup exists', 'the restore is refused or not approved in time', 'the facilitator aborts (assisted mode)'],
    detection: { alert: 'VaultHaQuorumLost', channel: 'pagerduty', withinSeconds: 300 },
    recovery: "a new one-node cluster is initialised; restoreVault restores the latest verified backup into it (production target, approved by a second person, never the requester), the custodians unseal it with the backed-up cluster's shares and the other nodes join it empty",
    checks: ['the canary secret of the restored backup reads back', 'the KV inventory matches the manifest', 'every node unsealed under the backed-up cluster id, HAProxy routes to the active one', 'RTO (fault → restore verified) and RPO (fault − snapshot time) recorded against the targets'],
    targets: { rtoSeconds: 3600, rpoSeconds: 93_600 },
    prerequisites: ['a drillable OpenBao cluster separate from production', 'restore.productionAddress and restore.productionTokenFile pointing at it', "restore.unsealSharesFile holding the backed-up cluster's shares"],
    schedule: { cron: '0 9 12 1,4,7,10 *', enabledByDefault: false },
    runbooks: ['docs/runbooks/restore.md', 'docs/runbooks/dr-drills.md'],
  },
  'vps-compromise': {
    id: 'vps-compromise',
    title: 'The mail VPS is compromised',
    hypothesis: 'When the mail VPS is declared compromised, it is quarantined, migrateVps rebuilds the mail service on the new host without touching the old one, the SSH key and the mailbox password it held are rotated there, and a test mail sent with the rotated password passes DKIM, SPF and DMARC within 90 min.',
    steadyState: ['the old and the new host answer SSH with their pinned host keys', 'the migration secrets are readable in Vault with the migration AppRole', "the mailbox password and the SSH key the VPS holds are in Vault, and the old host accepts that key"],
    fault: "a person declares the old host compromised (the drill sends the declaration notice); vault-dr quarantines it: its authorized_keys is kept aside and replaced by vault-dr's own key restricted to lifting the quarantine, so every key it trusted is refused, and the migration runs without looking at it",
    stopConditions: ['the new host key does not match the pinned fingerprint', 'the target is not marked drillable (drills.drillableTargets: mail-vps)', 'the facilitator aborts (assisted mode)'],
    // No probe detects a compromise: it is declared. What the drill times is the declaration notice reaching the on-call mailbox.
    detection: { alert: 'declaration notice (e-mail)', channel: 'email', withinSeconds: 120 },
    recovery: 'migrateVps onto the new host (old host not looked at, no mail copied from it), then rotateCredential for ssh-key and mailbox-password acting on the new host (rotation.host new)',
    checks: ['a test mail submitted with the rotated mailbox password arrives with DKIM, SPF and DMARC pass', 'IMAP login with the rotated mailbox password', 'the mailbox password and the SSH key from before the rotation are refused', 'SSH login with the rotated key', 'after the revert both hosts answer SSH with their pinned keys'],
    targets: { rtoSeconds: 5400, rpoSeconds: 0 },
    prerequisites: ['the VPS migration workflow and a second host (docs/runbooks/vps-migration.md)', 'rotation.host set to new with rotation.defaultScopes for ssh-key and mailbox-password (docs/runbooks/credential-rotation.md)'],
    schedule: { cron: '0 9 19 1,4,7,10 *', enabledByDefault: false },
    runbooks: ['docs/runbooks/vps-migration.md', 'docs/runbooks/credential-rotation.md'],
  },
  'credential-compromise': {
    id: 'credential-compromise',
    title: 'One credential class has leaked',
    hypothesis: 'When one credential class is declared leaked, the emergency workflow rotates it, the new credential works and the old one is refused within 30 min.',
    steadyState: ['the drill credential (drills.credentialClass of drills.credentialScope, default the secret-id of AppRole vaultdr-drill) logs in', 'no other drill and no incident is running'],
    fault: 'the class is declared compromised in a training-mode breachResponse (sev3: Slack and e-mail, never a page); automated mode: the drill answers as its responders, assisted: the facilitator does',
    stopConditions: ['the class is not marked drillable (credential-class in drills.drillableTargets)', 'the training incident is not closed within incidentTimeoutMinutes', 'the facilitator aborts (assisted mode)'],
    detection: { alert: 'breachResponse declared (training)', channel: 'email', withinSeconds: 60 },
    recovery: 'breachResponse (training mode) with rotateCredential for the class',
    checks: ['the new credential works', 'the old credential is refused', 'notices rendered for every tenant (training)'],
    targets: { rtoSeconds: 1800, rpoSeconds: 0 },
    prerequisites: ['the emergency-response workflows (docs/runbooks/breach-response.md)', 'a drill AppRole whose secret-id is stored at secret/vault-dr/credentials/approle-secret-id/<role> (docs/runbooks/dr-drills.md)', 'an alert inbox the drill can read (alerts.inbox.mailpitUrl)'],
    schedule: { cron: '0 9 26 1,4,7,10 *', enabledByDefault: false },
    runbooks: ['docs/runbooks/breach-response.md'],
  },
};

const fmtSeconds = (s: number) => (s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`);

/** docs/drills/scenarios.md, rendered from SCENARIOS. */
export function renderScenariosMarkdown(): string {
  const out = [
    '# DR drill scenarios',
    '',
    '<!-- generated from common/drills.ts by `npm run docs:drills`; test/drills.test.ts fails when this file differs -->',
    '',
    'Each scenario runs quarterly by a Temporal Schedule (`vaultdr schedules apply`); a schedule whose prerequisites the installation lacks is created paused. How to run, read and act on a drill: [dr-drills.md](../runbooks/dr-drills.md).',
    '',
    '| scenario | schedule (UTC) | created | RTO target | RPO target | must alert |',
    '|---|---|---|---|---|---|',
    ...SCENARIO_IDS.map((id) => {
      const s = SCENARIOS[id];
      return `| [${id}](#${id}) | \`${s.schedule.cron}\` | ${s.schedule.enabledByDefault ? 'running' : 'paused'} | ${fmtSeconds(s.targets.rtoSeconds)} | ${fmtSeconds(s.targets.rpoSeconds)} | ${s.detection.alert} |`;
    }),
    '',
  ];
  for (const id of SCENARIO_IDS) {
    const s = SCENARIOS[id];
    out.push(
      `## ${id}`,
      '',
      `**${s.title}.**`,
      '',
      `- **Hypothesis**: ${s.hypothesis}`,
      `- **Steady state**: ${s.steadyState.join('; ')}.`,
      `- **Fault**: ${s.fault}.`,
      `- **Stop conditions**: ${s.stopConditions.join('; ')}.`,
      `- **Detection**: alert \`${s.detection.alert}\` on ${s.detection.channel} within ${fmtSeconds(s.detection.withinSeconds)}.`,
      `- **Recovery**: ${s.recovery}.`,
      `- **Checks**: ${s.checks.join('; ')}.`,
      `- **Targets**: RTO ${fmtSeconds(s.targets.rtoSeconds)}, RPO ${fmtSeconds(s.targets.rpoSeconds)}.`,
      `- **Prerequisites**: ${s.prerequisites.join('; ')}.`,
      `- **Runbooks**: ${s.runbooks.map((r) => `[${r}](../../${r})`).join(', ')}.`,
      '',
    );
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Remediation findings

export const FINDING_SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type FindingSeverity = (typeof FINDING_SEVERITIES)[number];

const who = z.string().trim().min(1).max(100);
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date like 2027-01-31');

/** Input of drillFinding. Every field has a default, so the Web UI can start one with `{}` and fill it in by updates. */
export const FindingInput = z
  .object({
    /** The drill that found it ("manual" for one recorded by hand). */
    drillId: z.string().trim().min(1).max(120).default('manual'),
    scenario: z.enum(SCENARIO_IDS).default('vault-node-failure'),
    title: z.string().trim().min(1).max(200).default('Finding recorded by hand (describe it with the note update)'),
    /** The finding's stable kind ("rto-exceeded", "old-credential-accepted"): the next drill of the scenario re-tests by it. */
    kind: z.string().regex(/^[a-z0-9-]{1,60}$/, 'a kind like rto-exceeded').optional(),
    severity: z.enum(FINDING_SEVERITIES).default('medium'),
    owner: who.optional(),
    /** Due date (UTC, end of day); default: 30 days after the finding is opened. */
    dueDate: isoDate.optional(),
    /** The runbook section the fix belongs in: "docs/runbooks/ha-failover.md#manual-failover". */
    runbookSection: z
      .string()
      .max(200)
      .regex(/^docs\/runbooks\/[a-z0-9-]+\.md(#[a-z0-9-]+)?$/, 'a path like docs/runbooks/restore.md#section')
      .optional(),
    /** Reminders this many days before the due date. */
    remindDaysBefore: z.array(z.number().int().min(1).max(90)).max(5).default([7, 1]),
    /** After the due date, the overdue alert repeats every this many days (and pages from the third). */
    overdueEveryDays: z.number().int().min(1).max(30).default(7),
  })
  .strict();
export type FindingInput = z.input<typeof FindingInput>;

export const AssignUpdate = z.object({ owner: who, by: who }).strict();
export const ResolveUpdate = z
  .object({
    by: who,
    /** What shows it is fixed: a commit, a runbook change, a drill id. Never a secret. */
    evidence: z.string().trim().min(1).max(2000),
  })
  .strict();
export const NoteUpdate = z.object({ by: who, text: z.string().trim().min(1).max(2000) }).strict();

export type FindingStatus = 'open' | 'resolved';

export interface FindingEvent {
  at: string;
  by: string;
  what: string;
}

/** The durable record of a finding (drills/findings/<findingId>.json in the bucket). */
export interface FindingRecord {
  findingId: string;
  workflowId: string;
  drillId: string;
  scenario: ScenarioId;
  /** Stable kind (absent in findings opened before kinds existed: findingKindOf derives it from the title). */
  kind?: string;
  title: string;
  severity: FindingSeverity;
  owner?: string;
  dueDate: string;
  runbookSection?: string;
  status: FindingStatus;
  openedAt: string;
  resolvedAt?: string;
  resolvedBy?: string;
  evidence?: string;
  /** The next drill of this scenario re-tests a resolved finding and sets this. */
  retestedInDrill?: string;
  timeline: FindingEvent[];
}

/** Overdue: still open after the end (UTC) of its due date. */
export function isOverdue(f: Pick<FindingRecord, 'status' | 'dueDate'>, nowMs: number): boolean {
  return f.status === 'open' && nowMs > Date.parse(`${f.dueDate}T23:59:59Z`);
}
