// rotateCredential — emergency rotation of ONE credential class. Reads like
// docs/runbooks/credential-rotation.md:
//   planRotation → issueNewCredential → [awaitRotationConfirmed: a person applies or rotates it]
//   → verifyNewCredential → revokeOldCredentials → verifyOldRefused
// (smtp-relay with rotation.host: planRotation → [awaitRelayPasswordStored: a responder stores the
// login the relay provider issued in Vault and names the path] → applyRelayCredential (written to
// the mail host's Postfix, reloaded) → verifyNewCredential → revokeOldCredentials → verifyOldRefused;
// backup-recipient: issueRecipientKey → replaceRecipient → probeRecipients → unwrapRecipientProbe).
// A verification that fails stops the class and alerts; the result says what state it left:
// the old credential is left in place only when the new one never worked (discardNewCredential).
// Everything outside verification (Vault unreachable, a bad scope) fails the run through failRunbook.
// breachResponse starts it as a child per class; `vaultdr rotate <class> [--scope]` starts it alone.
// No value ever enters history: activities read and write the values in Vault KV themselves.
import { defineQuery, defineUpdate, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RotationActivities, RotationPlan } from '../../activities/emergency/rotation';
import type { RecipientActivities } from '../../activities/emergency/recipients';
import { RelayPasswordStored, RotateInput, RotationConfirmation, type RotateResult } from '../../common/rotation';
import { describeIssues, parseWorkflowInput } from '../../common/validate';
import { STAGING } from '../profiles';
import { activityQueue } from '../queues';
import { ALERT } from '../profiles';
import type { NotifyActivities } from '../../activities/notify/notify';
import { awaitHuman, failRunbook, showStep, steps, summarized, type AlertContext, describeRun } from '../helpers';

const { applyRelayCredential, discardNewCredential, issueNewCredential, issueRecipientKey, planRotation, revokeOldCredentials, unwrapRecipientProbe, verifyNewCredential, verifyOldRefused } = proxyActivities<RotationActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
const { probeRecipients, replaceRecipient } = proxyActivities<RecipientActivities>({ ...STAGING, taskQueue: activityQueue('backup') });
const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });

export type RotateStep =
  | 'planRotation'
  | 'issueNewCredential'
  | 'awaitRotationConfirmed'
  | 'awaitRelayPasswordStored'
  | 'applyRelayCredential'
  | 'verifyNewCredential'
  | 'discardNewCredential'
  | 'revokeOldCredentials'
  | 'verifyOldRefused'
  | 'issueRecipientKey'
  | 'replaceRecipient'
  | 'probeRecipients'
  | 'unwrapRecipientProbe';

export interface RotateProgress {
  credentialClass?: string;
  scope?: string;
  training?: boolean;
  incidentId?: string;
  step: RotateStep | 'validating input' | 'done' | 'failed';
  completed: RotateStep[];
  /** Where the delivered value lives (a path, never the value). */
  kvPath?: string;
  waitingFor?: string;
  confirmation?: RotationConfirmation;
  /** smtp-relay with rotation.host: where the responder stored the new relay login (a path, never the value). */
  relayStored?: RelayPasswordStored;
  /** One line per step, as the result's detail is built. */
  log: string[];
  error?: string;
}
export const progress = defineQuery<RotateProgress>('progress');

/** A person confirms they applied (hook not wired: rotation.host unset) or rotated (third-party) the credential. */
export const confirmRotated = defineUpdate<{ accepted: true }, [RotationConfirmation]>('confirmRotated');

/** smtp-relay with rotation.host: a responder names the Vault path of the relay login the provider issued. */
export const relayPasswordStored = defineUpdate<{ accepted: true }, [RelayPasswordStored]>('relayPasswordStored');

/** How many stored logins applyRelayCredential may turn down (nothing there, the old one again) before the class stops. */
const RELAY_STORE_ATTEMPTS = 3;

export async function rotateCredential(rawInput?: RotateInput): Promise<RotateResult> {
  const info = workflowInfo();
  const state: RotateProgress = { step: 'validating input', completed: [], log: [] };
  setHandler(progress, () => state);
  describeRun(rawInput);
  setHandler(
    confirmRotated,
    (c) => {
      state.confirmation = RotationConfirmation.parse(c);
      return { accepted: true };
    },
    {
      validator: (c) => {
        if (state.step !== 'awaitRotationConfirmed') throw new Error(`rotation ${info.workflowId} is not waiting for a confirmation (step: ${state.step})`);
        const parsed = RotationConfirmation.safeParse(c);
        if (!parsed.success) throw new Error(`confirmRotated: ${describeIssues(parsed.error.issues)}`);
      },
    },
  );
  let relayFolder: string | undefined;
  setHandler(
    relayPasswordStored,
    (u) => {
      state.relayStored = RelayPasswordStored.parse(u);
      return { accepted: true };
    },
    {
      validator: (u) => {
        if (state.step !== 'awaitRelayPasswordStored') throw new Error(`rotation ${info.workflowId} is not waiting for a stored relay login (step: ${state.step})`);
        const parsed = RelayPasswordStored.safeParse(u);
        if (!parsed.success) throw new Error(`relayPasswordStored: ${describeIssues(parsed.error.issues)}`);
        if (relayFolder && !parsed.data.kvPath.startsWith(relayFolder)) throw new Error(`relayPasswordStored: kvPath must be under ${relayFolder} (the rotator reads there)`);
      },
    },
  );
  const { step, failedAt, done } = steps<RotateStep>(state);
  showStep('validating input');
  let input: ReturnType<typeof RotateInput.parse> = { training: false, confirmTimeoutMinutes: 1, remindEveryMinutes: 1 };
  const tag = () => (input.training ? 'TRAINING: ' : '');
  const alert: AlertContext = {
    workflow: 'rotateCredential',
    subject: `${tag()}Emergency rotation of ${state.credentialClass ?? rawInput?.credentialClass ?? 'a credential'}${state.scope ? ` (${state.scope})` : ''}`,
    details: () => ({ class: state.credentialClass ?? '(unknown)', scope: state.scope ?? '(unknown)', ...(input.incidentId ? { incident: input.incidentId } : {}), ...(input.training ? { training: 'true' } : {}) }),
  };
  const note = (line: string) => state.log.push(line);

  /** A verification failed: alert, stop this class, say what was left in place. */
  const stopped = async (r: Omit<RotateResult, 'credentialClass' | 'rotated'>, what: string): Promise<RotateResult> => {
    state.step = 'failed';
    showStep('failed');
    state.error = what;
    await sendAlert({
      severity: input.training ? 'warning' : 'critical',
      dedupKey: `rotateCredential/${info.workflowId}/${state.credentialClass}/verification`,
      summary: `${tag()}Rotation of ${state.credentialClass} (${state.scope}) stopped: ${what}`,
      workflowId: info.workflowId,
      runId: info.runId,
      failedStep: failedAt() ?? state.step,
      errorType: 'VerificationFailed',
      error: what,
      details: { ...alert.details!(), 'old credential left in place': String(r.oldLeftInPlace), 'new credential verified': String(r.newVerified) },
    }).catch(() => undefined);
    return { credentialClass: state.credentialClass!, rotated: false, ...r, detail: `${r.detail}; STOPPED: ${what}` };
  };

  try {
    input = parseWorkflowInput('rotateCredential', RotateInput, rawInput);
    state.training = input.training;
    state.incidentId = input.incidentId;
    const plan: RotationPlan = await step('planRotation', () => summarized(planRotation, `Plan the rotation of ${input.credentialClass ?? 'the default class'}`, { credentialClass: input.credentialClass, scope: input.scope }));
    state.credentialClass = plan.credentialClass;
    state.scope = plan.scope;
    state.kvPath = plan.kvPath;
    if (plan.hook) note(plan.hook.wired ? `applied through ${plan.hook.name}` : `hook ${plan.hook.name} is not wired in this deployment: ${plan.hook.instead}`);
    const what = `${plan.credentialClass} (${plan.scope})`;

    if (plan.credentialClass === 'backup-recipient') {
      const issued = await step('issueRecipientKey', () => summarized(issueRecipientKey, `New validation key replacing ${plan.scope}`, { plan }));
      note(issued.detail);
      const replaced = await step('replaceRecipient', () => replaceRecipient({ compromisedKeyId: plan.scope, newKeyId: issued.newKeyId, newPublicKey: issued.newPublicKey }));
      note(replaced.detail);
      const probe = await step('probeRecipients', () => probeRecipients());
      const opened = await step('unwrapRecipientProbe', () => unwrapRecipientProbe({ stanzas: probe.stanzas, probeSha256: probe.probeSha256 }));
      note(opened.detail);
      const oldRefused = !probe.keyIds.includes(plan.scope);
      note(oldRefused ? `new backups are no longer encrypted to ${plan.scope}` : `new backups are STILL encrypted to ${plan.scope}`);
      // The recipients file was already changed: the old key is not left in place either way.
      if (!opened.ok) return await stopped({ newVerified: false, oldRefused, oldLeftInPlace: false, detail: state.log.join('; ') }, `the new validation key does not open a probe wrapped for the new recipients`);
      if (!oldRefused) return await stopped({ newVerified: true, oldRefused, oldLeftInPlace: false, detail: state.log.join('; ') }, `the recipients file still lists ${plan.scope}`);
      done();
      return { credentialClass: plan.credentialClass, rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false, detail: state.log.join('; ') };
    }

    let issued: { kvVersion?: number } = {};
    if (plan.relay) {
      // The relay provider issues it: wait for a responder to store it in Vault, then apply it to the host.
      relayFolder = plan.relay.intakeFolder;
      for (let attempt = 1; ; attempt++) {
        state.relayStored = undefined;
        await step('awaitRelayPasswordStored', () =>
          awaitHuman({
            what: 'new relay login stored',
            instruction: `${plan.personTask!.replace('<workflowId>', info.workflowId)}`,
            done: () => state.relayStored !== undefined,
            timeoutMinutes: input.confirmTimeoutMinutes,
            remindEveryMinutes: input.remindEveryMinutes,
            state,
            alert,
          }),
        );
        const stored = state.relayStored!;
        note(`${stored.who} stored the new relay login at ${stored.kvPath}${stored.version ? ` version ${stored.version}` : ''}${stored.oldRevoked ? ' (old revoked at the provider)' : ' (old NOT revoked at the provider)'}`);
        const applied = await step('applyRelayCredential', () => summarized(applyRelayCredential, `Write the new relay login to the mail host`, { plan, source: { kvPath: stored.kvPath, version: stored.version } }));
        note(applied.detail);
        if (applied.ok) break;
        if (attempt >= RELAY_STORE_ATTEMPTS) return await stopped({ newVerified: false, oldRefused: false, oldLeftInPlace: true, detail: state.log.join('; ') }, `no usable new relay login after ${attempt} tries; the mail host keeps the old one`);
      }
    } else {
      const out = await step('issueNewCredential', () => summarized(issueNewCredential, `Issue a new ${what}`, { plan }));
      note(out.detail);
      issued = out;
    }
    if (plan.mode === 'person' && !plan.relay) {
      await step('awaitRotationConfirmed', () =>
        awaitHuman({
          what: 'rotation confirmed',
          instruction: `${plan.personTask}: vaultdr rotate confirm ${info.workflowId} --who NAME [--old-revoked]`,
          done: () => state.confirmation !== undefined,
          timeoutMinutes: input.confirmTimeoutMinutes,
          remindEveryMinutes: input.remindEveryMinutes,
          state,
          alert,
        }),
      );
      note(`confirmed by ${state.confirmation!.who}${state.confirmation!.oldRevoked ? ' (old revoked at the issuer)' : ' (old NOT revoked at the issuer)'}`);
    }
    const sinceVersion = plan.credentialClass === 'channel-secret' ? issued.kvVersion : undefined;
    const verified = await step('verifyNewCredential', () => summarized(verifyNewCredential, `Verify the new ${what}`, { plan, sinceVersion }));
    note(verified.detail);
    if (!verified.ok) {
      const discarded = await step('discardNewCredential', () => discardNewCredential({ plan }));
      note(discarded.detail);
      // The new one never worked: the old one stays, so its holders are not cut off.
      return await stopped({ newVerified: false, oldRefused: false, oldLeftInPlace: true, detail: state.log.join('; ') }, `the new credential does not work (${verified.detail}); the old one is left in place`);
    }
    const revoked = await step('revokeOldCredentials', () => summarized(revokeOldCredentials, `Revoke the old ${what}`, { plan }));
    note(revoked.detail);
    const refused = await step('verifyOldRefused', () => summarized(verifyOldRefused, `Prove the old ${what} is refused`, { plan, oldRevokedAttested: state.relayStored?.oldRevoked ?? state.confirmation?.oldRevoked, sinceVersion }));
    note(refused.detail);
    if (!refused.ok) return await stopped({ newVerified: true, oldRefused: false, oldLeftInPlace: false, detail: state.log.join('; ') }, `the old credential is not shown refused (${refused.detail})`);
    done();
    return { credentialClass: plan.credentialClass, rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false, detail: state.log.join('; ') };
  } catch (err) {
    const failedStep = failedAt() ?? state.step;
    return failRunbook(err, {
      failedStep,
      state,
      alert,
      severity: () => (input.training ? 'warning' : 'critical'),
      failureMessage: (f) => `${tag()}rotation of ${state.credentialClass ?? input.credentialClass ?? 'the default class'} failed at ${failedStep}: ${f.message}`,
    });
  }
}
