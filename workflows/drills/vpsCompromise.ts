// The vps-compromise scenario of drDrill (common/drills.ts, docs/runbooks/dr-drills.md): drDrill runs
// its preconditions and its report; this runs the rest with drDrill's step() (assisted confirmations,
// abort), timeline and report:
//   checkSteadyState (both hosts answer SSH with pinned keys, migration secrets readable, the
//   credentials the VPS holds in Vault and trusted by the old host) → injectFault (the declaration
//   notice, then the old host quarantined) → awaitDetection (the notice in the on-call mailbox) →
//   recover (child migrateVps onto the new host with the old one not looked at, then child
//   rotateCredential ssh-key and mailbox-password acting on the new host) → revertFault (the
//   quarantine lifted; ALWAYS, non-cancellable, also after an abort or a failure) → verifyRecovery
//   (a test mail with the rotated password passes DKIM/SPF/DMARC, the old password and key refused,
//   both hosts answer SSH again; the migration's own secrets no longer hold the rotated-away credentials).
// RTO: declaration → credentials rotated on the new host. Values never enter history: the children
// and activities read them in Vault by path.
import { ApplicationFailure, CancellationScope, ChildWorkflowFailure, executeChild, proxyActivities } from '@temporalio/workflow';
import type { MigrationActivities } from '../../activities/migration';
import type { NotifyActivities } from '../../activities/notify/notify';
import type { VpsDrillCredentialActivities, VpsDrillHostActivities, VpsDrillNoticeActivities } from '../../activities/drills/vps';
import { SCENARIOS } from '../../common/drills';
import type { DrDrillInput, DrDrillReport, DrDrillStep, TimelineEvent } from '../../common/drillRun';
import type { MigrateResult } from '../../common/migration';
import type { RotateResult } from '../../common/rotation';
import type { z } from 'zod';
import { POLL, describeFailure, summarized } from '../helpers';
import { migrateVps } from '../migration/migrateVps';
import { rotateCredential } from '../emergency/rotateCredential';
import { ALERT, MIGRATION, STAGING } from '../profiles';
import { activityQueue } from '../queues';

const { preflightTarget, readMigrationSecrets } = proxyActivities<MigrationActivities>({ ...MIGRATION, taskQueue: activityQueue('migration') });
const { quarantineOldHost, liftQuarantine, checkMigrationSecretsCurrent } = proxyActivities<VpsDrillHostActivities>({ ...MIGRATION, taskQueue: activityQueue('migration') });
const { checkVpsCredentials, verifyVpsRecovered } = proxyActivities<VpsDrillCredentialActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });
const { awaitDrillNotice } = proxyActivities<VpsDrillNoticeActivities>({ ...POLL, heartbeatTimeout: '20s', taskQueue: activityQueue('notify') });

/** What drDrill lends a scenario: its step() (confirmations, abort), its timeline and its report. */
export interface DrillContext {
  input: z.output<typeof DrDrillInput>;
  drillId: string;
  workflowId: string;
  runId: string;
  step: <T>(name: DrDrillStep, fn: () => Promise<T>, opts?: { always?: boolean }) => Promise<T>;
  event: (kind: TimelineEvent['kind'], what: string, at?: number) => void;
  report: Partial<DrDrillReport>;
  /** The progress query's measured fields. */
  measured: (m: { rtoMs?: number; detectMs?: number; alert?: DrDrillReport['alert'] }) => void;
  /** Called before the first change: from here on a failure leaves a report and the revert runs. */
  faultStarting: () => void;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Steady state; a failure here is a refusal (drDrill marks it so). */
export async function vpsSteadyState(ctx: DrillContext): Promise<{ mailbox: string; sshUser: string }> {
  return ctx.step('checkSteadyState', async () => {
    try {
      await summarized(preflightTarget, 'vps-compromise: the new host answers SSH with its pinned key', { which: 'new' });
      const old = await summarized(preflightTarget, 'vps-compromise: the old host answers SSH with its pinned key', { which: 'old' });
      if ('unreachable' in old) throw ApplicationFailure.create({ type: 'DrillSteadyStateNotHolding', nonRetryable: true, message: `steady state does not hold, nothing injected: the old host is unreachable (${old.unreachable})` });
      await summarized(readMigrationSecrets, 'vps-compromise: the migration secrets are readable in Vault', { source: { kind: 'live' } });
      const creds = await summarized(checkVpsCredentials, 'vps-compromise: the credentials the VPS holds are in Vault, the old host trusts its SSH key');
      return { mailbox: creds.mailbox, sshUser: creds.sshUser };
    } catch (err) {
      // Anything that fails here (a host unreachable, a key not pinned, a secret missing) is a refusal; an abort stays an abort.
      const f = describeFailure(err);
      if (f && !f.cancelled && f.errorType !== 'DrillAborted') throw ApplicationFailure.create({ type: 'DrillSteadyStateNotHolding', nonRetryable: true, message: `steady state does not hold, nothing injected: ${f.message.replace(/^steady state does not hold, nothing injected: /, '')}` });
      throw err;
    }
  });
}

/** Fault, detection, recovery, revert (always) and verification. Fills ctx.report. */
export async function vpsCompromise(ctx: DrillContext, scopes: { mailbox: string; sshUser: string }): Promise<void> {
  const { input, drillId, report } = ctx;
  const phases: { what: string; ms: number }[] = (report.phases = []);
  report.labels = { rto: 'RTO (declaration → migrated and every credential rotated on the new host)', rpo: 'RPO (mail data: not measured, no mailbox is read from the compromised host)', revert: 'revert (quarantine lifted, both hosts answer SSH)' };
  const detectionTimeoutSeconds = input.detectionTimeoutSeconds ?? SCENARIOS['vps-compromise'].detection.withinSeconds + 60;
  let quarantineStarted = false;
  let declaredAt = 0;
  const marker = `vps-compromise drill ${drillId}`;
  try {
    ctx.faultStarting();
    await ctx.step('injectFault', async () => {
      declaredAt = Date.now();
      report.fault = { node: 'migration.hosts.old', injectedAt: iso(declaredAt), kind: 'compromise declared, then quarantine' };
      ctx.event('fault', 'old host declared compromised (notice sent)', declaredAt);
      await summarized(sendAlert, 'Declaration notice to the on-call channel', {
        severity: 'warning',
        dedupKey: `drDrill/${drillId}/vps-compromise-declared`,
        summary: `DRILL: the mail VPS (migration.hosts.old) is declared compromised (${marker})`,
        workflowId: ctx.workflowId,
        runId: ctx.runId,
        details: { scenario: 'vps-compromise', drill: drillId, response: 'quarantine the old host, migrate to the new host, rotate ssh-key and mailbox-password' },
      });
      quarantineStarted = true;
      const q = await summarized(quarantineOldHost, 'Quarantine the old host: every key it trusted refused', { drillId });
      ctx.event('fault', `old host quarantined: ${q.refused.length} key(s) refused, vault-dr's own key limited to the lift`);
    });

    const alert = await ctx.step('awaitDetection', () => summarized(awaitDrillNotice, 'Wait for the declaration notice in the on-call mailbox', { marker, sinceIso: iso(declaredAt), untilIso: iso(declaredAt + detectionTimeoutSeconds * 1000) }));
    report.alert = alert;
    if (alert.observed && alert.startsAt) {
      report.detectMs = Math.max(0, Date.parse(alert.startsAt) - declaredAt);
      ctx.event('alert', `declaration notice in the on-call mailbox (${alert.labels?.to ?? 'email'})`, Date.parse(alert.startsAt));
    }
    ctx.measured({ detectMs: report.detectMs, alert });

    await ctx.step('recover', async () => {
      let t0 = Date.now();
      // The old host is not looked at: it is compromised (mail data comes from its backup, not from it).
      // Assisted mode: the facilitator approves the cutover on the child itself.
      const migrated: MigrateResult = await executeChild(migrateVps, {
        workflowId: `${ctx.workflowId}-migrate`,
        args: [{ oldHost: false, copyMail: false, secretSource: 'live', awaitCutover: input.mode === 'assisted', reason: `DR drill ${drillId}: vps-compromise`.slice(0, 200) }],
      });
      phases.push({ what: `migrateVps (${migrated.status}; ${migrated.timings.map((t) => `${t.step} ${t.seconds} s`).join(', ')})`, ms: Date.now() - t0 });
      ctx.event('recovered', `mail service rebuilt on the new host: test mail DKIM ${migrated.mail.dkim}, SPF ${migrated.mail.spf}, DMARC ${migrated.mail.dmarc}`);
      const rotations: RotateResult[] = [];
      for (const [credentialClass, scope] of [['ssh-key', scopes.sshUser], ['mailbox-password', scopes.mailbox]] as const) {
        t0 = Date.now();
        const r = await executeChild(rotateCredential, { workflowId: `${ctx.workflowId}-rotate-${credentialClass}`, args: [{ credentialClass, scope, incidentId: ctx.workflowId }] });
        phases.push({ what: `rotateCredential ${credentialClass} (${scope}): ${r.rotated ? 'rotated' : 'NOT rotated'}`, ms: Date.now() - t0 });
        ctx.event(r.rotated ? 'recovered' : 'finding', `${credentialClass} ${r.rotated ? 'rotated' : 'NOT rotated'} on the new host (new works: ${r.newVerified}, old refused: ${r.oldRefused})`);
        rotations.push(r);
      }
      report.checks = rotations.map((r) => ({ what: `rotateCredential ${r.credentialClass}: the new one works and the old one is refused`, ok: r.rotated && r.newVerified && r.oldRefused, detail: r.detail.slice(0, 400) }));
      report.rtoMs = Date.now() - declaredAt;
      ctx.measured({ rtoMs: report.rtoMs });
    });
  } catch (err) {
    // The child's own failure (type and message) is what the operator needs, not "child failed".
    throw err instanceof ChildWorkflowFailure && err.cause ? err.cause : err;
  } finally {
    if (quarantineStarted) {
      await CancellationScope.nonCancellable(async () => {
        const t0 = Date.now();
        const lifted = await ctx.step('revertFault', () => summarized(liftQuarantine, 'Lift the quarantine of the old host', { drillId }), { always: true });
        report.revertMs = Date.now() - t0;
        ctx.event('revert', `old host quarantine lifted (${lifted.detail})`);
      });
    }
  }

  await ctx.step('verifyRecovery', async () => {
    const v = await summarized(verifyVpsRecovered, 'Test mail with the rotated password (DKIM/SPF/DMARC), old password and key refused', { drillId, mailbox: scopes.mailbox, sshUser: scopes.sshUser });
    const both = await Promise.all(
      (['new', 'old'] as const).map((which) =>
        summarized(preflightTarget, `the ${which} host answers SSH with its pinned key`, { which }).then(
          (r) => ({ what: `the ${which} host answers SSH with its pinned key after the revert`, ok: !('unreachable' in r), detail: 'unreachable' in r ? r.unreachable : `${r.host} ${r.os}` }),
          (e: unknown) => ({ what: `the ${which} host answers SSH with its pinned key after the revert`, ok: false, detail: describeFailure(e)?.message ?? String(e) }),
        ),
      ),
    );
    // Would the next migration put the compromised credentials back? (the migration keeps its own copies)
    const stale = await summarized(checkMigrationSecretsCurrent, "The migration's own secrets no longer hold the rotated-away credentials", { revokedKeyFingerprints: v.revokedKeyFingerprints });
    report.checks = [...(report.checks ?? []), ...v.checks, ...both, ...stale.checks];
  });
}
