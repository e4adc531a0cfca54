// The shared shapes of every vault-dr workflow (workflow-safe):
//   step        — progress state: the current step, the completed list, the first step that failed;
//   awaitHuman  — wait durably for a person (an update sets the condition; the caller's validator
//                 guards it), reminding and escalating on sparse timers, failing at a deadline;
//   pollUntil   — wait for a machine condition by polling INSIDE a heartbeating activity, one
//                 call per reminder interval, reminding and escalating between calls;
//   failRunbook — the one failure path: record and alert in a non-cancellable scope, cancellation
//                 re-thrown (the run ends Cancelled), bugs left to fail the workflow task.
// Long waits cost O(reminders) history events, not O(time): a 24 h wait with hourly reminders is
// a few hundred events, where a 5 s poll loop was ~17,000 iterations and hit the history limit.
import { type ActivityFunction, type ActivityFunctionWithOptions, type ActivityOptions, ActivityFailure, ApplicationFailure, CancellationScope, TemporalFailure, condition, defineSignal, isCancellation, log, proxyActivities, patched, setCurrentDetails, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ZodType, ZodTypeDef } from 'zod';
import { staticMetadata, type StaticMetadata } from '../common/summaries';
import { VAULT_DR_STEP, WAITING_FOR, type VaultDrSearchAttribute } from '../common/searchAttributes';
import type { NotifyActivities, Severity } from '../activities/notify/notify';
import { capText, describeIssues } from '../common/validate';
import { NON_RETRYABLE_ERROR_TYPES } from '../common/errors';
import { ALERT } from './profiles';
import { activityQueue } from './queues';

const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });

/** The longest a polling activity runs before handing back to the workflow (it heartbeats throughout). */
export const MAX_POLL_SLICE_MINUTES = 60;

/**
 * Profile for polling activities (pollUntil): a slice runs up to MAX_POLL_SLICE_MINUTES and
 * heartbeats every probe, so a dead worker is noticed in a minute and the retry resumes the wait
 * (a probe may take up to 3 × 15 s against a hanging server, hence not less).
 */
export const POLL: ActivityOptions = {
  startToCloseTimeout: `${MAX_POLL_SLICE_MINUTES + 5}m`,
  heartbeatTimeout: '60s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 20, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
};

// ---------------------------------------------------------------------------------------------
// search attributes (the Web UI's list view: what a run is doing and waiting for)

/**
 * Runs that started before the search attributes existed (their histories have no upserts) replay
 * without them: the upserts are behind this patch (test/replay.test.ts replays such histories).
 */
export const SEARCH_ATTRIBUTES_PATCH = 'vault-dr-search-attributes';

/** Sets (a value) or clears (undefined) one of vault-dr's Keyword search attributes; no command when unchanged. */
export function showAttribute(key: VaultDrSearchAttribute, value: string | undefined): void {
  if ((workflowInfo().typedSearchAttributes.get(key) ?? undefined) === value) return;
  if (!patched(SEARCH_ATTRIBUTES_PATCH)) return;
  upsertSearchAttributes([{ key, value: value ?? null }]);
}

// The run's current details (the Web UI's "Current Details" on the run page, and the
// __temporal_workflow_metadata query): what the run is for, its step and what it waits for. Not a
// command, so no history event and no replay concern; set on every run however it was started.
const details: { about?: StaticMetadata; step?: string; waitingFor?: string } = {};
function renderDetails(): void {
  const lines = [
    ...(details.about ? [`**${details.about.staticSummary}**`] : []),
    ...(details.step ? [`**Step**: ${details.step}`] : []),
    ...(details.waitingFor ? [`**Waiting for**: ${details.waitingFor}`] : []),
    ...(details.about?.staticDetails ? [details.about.staticDetails] : []),
  ];
  setCurrentDetails(lines.join('\n\n'));
}

/**
 * Says what this run is for in its current details, from its input (the same words the CLI and
 * schedules set as the static summary): a run started from the Web UI with `{}` says it too.
 */
export function describeRun(input: unknown): void {
  details.about = staticMetadata(workflowInfo().workflowType, input);
  renderDetails();
}

/** Shows the run's current step in the VaultDrStep search attribute and its current details. */
export const showStep = (name: string): void => {
  details.step = name;
  renderDetails();
  showAttribute(VAULT_DR_STEP, name);
};

/** Sets (or, with undefined, clears) the WaitingFor search attribute ("approval", "custodian shares"...) and the current details. */
export const showWaitingFor = (what: string | undefined): void => {
  details.waitingFor = what;
  renderDetails();
  showAttribute(WAITING_FOR, what);
};

/**
 * Calls an activity with a summary the Web UI shows on the run's timeline ("Restore
 * 20261201T020000Z-ab12cd34 into production"). Never a secret: ids, targets, step names.
 */
export function summarized<F extends ActivityFunction>(activity: ActivityFunctionWithOptions<F>, summary: string, ...args: Parameters<F>): Promise<Awaited<ReturnType<F>>> {
  return activity.executeWithOptions({ summary: summary.slice(0, 200) }, args);
}

// ---------------------------------------------------------------------------------------------
// step

export interface StepState<S extends string> {
  step: S | 'validating input' | 'done' | 'failed';
  completed: S[];
}

/**
 * Runs named steps against a progress state. `failedAt()` is the FIRST step that failed, not a
 * cleanup step (teardown) that ran after it.
 */
export function steps<S extends string>(state: StepState<S>) {
  let failedAt: S | undefined;
  return {
    async step<T>(name: S, run: () => Promise<T>): Promise<T> {
      state.step = name;
      showStep(name);
      try {
        const out = await run();
        state.completed.push(name);
        return out;
      } catch (err) {
        failedAt ??= name;
        throw err;
      }
    },
    failedAt: () => failedAt,
    /** A decision that ends the run (a refusal) is the outcome of this step, whatever ran after. */
    markFailed(name: S) {
      failedAt = name;
    },
    /** The run ended well: progress and VaultDrStep say "done". */
    done() {
      state.step = 'done';
      showStep('done');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// reminders and escalation, shared by awaitHuman and pollUntil

export interface AlertContext {
  /** Workflow type, the first part of every dedup key: "restoreVault". */
  workflow: string;
  /** How alerts name this run: "Vault restore 20261201T020000Z-ab12cd34". */
  subject: string;
  /** Extra non-secret facts for every reminder and failure alert. */
  details?: () => Record<string, string>;
}

/** What a waiting workflow shows in its progress query (and what the CLI prints). */
export interface WaitState {
  waitingFor?: string;
}

interface WaitCommon {
  /** What the run waits for, in the operator's words: "approval", "custodian shares", "target unsealed". */
  what: string;
  /** How a human ends the wait (shown in waitingFor and in every reminder). */
  instruction: string;
  /** The wait fails non-retryably (ApprovalTimeout) after this many minutes. */
  timeoutMinutes: number;
  remindEveryMinutes: number;
  /**
   * From this reminder on, reminders are critical (they page): 1 = every reminder pages, 3 = two
   * warnings (chat, e-mail) and then the pager. Default 3.
   */
  escalateAfter?: number;
  state: WaitState;
  alert: AlertContext;
}

async function remind(w: WaitCommon, reminder: number, detail: string): Promise<void> {
  const info = workflowInfo();
  const escalated = reminder >= (w.escalateAfter ?? 3);
  await sendAlert({
    severity: escalated ? 'critical' : 'warning',
    dedupKey: `${w.alert.workflow}/${info.workflowId}/waiting-for-${w.what.replace(/\s+/g, '-')}/${reminder}`,
    summary: `${w.alert.subject} is waiting for ${w.what} (reminder ${reminder}${escalated ? ', escalated' : ''})`,
    workflowId: info.workflowId,
    runId: info.runId,
    details: { instruction: w.instruction, ...(detail ? { now: detail } : {}), 'escalation level': escalated ? 'critical (pages on-call)' : 'warning', ...(w.alert.details?.() ?? {}) },
  }).catch((err: unknown) => {
    // A reminder that cannot be delivered must not end the wait; a cancellation must.
    if (isCancellation(err)) throw err;
  });
}

function timeout(w: WaitCommon): never {
  throw ApplicationFailure.create({ type: 'ApprovalTimeout', message: `no ${w.what} within ${w.timeoutMinutes} minutes`, nonRetryable: true });
}

// ---------------------------------------------------------------------------------------------
// awaitHuman

export interface HumanWait extends WaitCommon {
  /** True once the human's update (checked by its validator) has arrived. */
  done: () => boolean;
}

/**
 * Waits for a human: the caller's update handler sets what `done` reads. One timer per reminder
 * (condition with a timeout), so the history grows with reminders, never with time.
 */
export async function awaitHuman(w: HumanWait): Promise<void> {
  w.state.waitingFor = `${w.what}: ${w.instruction}`;
  showWaitingFor(w.what);
  const deadline = Date.now() + w.timeoutMinutes * 60_000;
  let reminder = 0;
  try {
    for (;;) {
      const next = Math.min(w.remindEveryMinutes * 60_000, deadline - Date.now());
      if (next > 0 && (await condition(w.done, next))) return;
      if (w.done()) return;
      if (Date.now() >= deadline) timeout(w);
      await remind(w, ++reminder, '');
    }
  } finally {
    w.state.waitingFor = undefined;
    showWaitingFor(undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// pollUntil

export interface PollResult {
  done: boolean;
  /** What the probe saw last, in the operator's words ("https://… is sealed"). */
  detail: string;
}

export interface MachineWait<R extends PollResult> extends WaitCommon {
  /**
   * The polling activity: probes until its condition holds or `untilIso` passes, heartbeating
   * every probe. Called once with `untilIso` = now for a first look, then once per slice.
   */
  poll: (req: { untilIso: string }) => Promise<R>;
}

/**
 * "Poll until": the polling runs inside the activity; the workflow calls it once per reminder
 * interval (at most MAX_POLL_SLICE_MINUTES), so a 24 h wait is ~24 activity calls, not 17,000
 * timers. Returns the activity's result once the condition holds.
 */
export async function pollUntil<R extends PollResult>(w: MachineWait<R>): Promise<R> {
  const shown = (r: R) => {
    w.state.waitingFor = `${w.what}: ${r.detail}; ${w.instruction}`;
    showWaitingFor(w.what);
  };
  try {
    let r = await w.poll({ untilIso: new Date(Date.now()).toISOString() });
    const deadline = Date.now() + w.timeoutMinutes * 60_000;
    let nextReminder = Date.now() + w.remindEveryMinutes * 60_000;
    let reminder = 0;
    while (!r.done) {
      shown(r);
      if (Date.now() >= deadline) timeout(w);
      if (Date.now() >= nextReminder) {
        await remind(w, ++reminder, r.detail);
        nextReminder = Date.now() + w.remindEveryMinutes * 60_000;
      }
      const sliceEnd = Math.min(nextReminder, deadline, Date.now() + MAX_POLL_SLICE_MINUTES * 60_000);
      r = await w.poll({ untilIso: new Date(sliceEnd).toISOString() });
      // An activity that hands back early (a clock ahead of the workflow's, a bug) must not turn
      // this into a hot loop: wait out the slice here.
      if (!r.done && sliceEnd - Date.now() > 1000) await sleep(sliceEnd - Date.now());
    }
    return r;
  } finally {
    w.state.waitingFor = undefined;
    showWaitingFor(undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// failRunbook

export interface RunbookFailure {
  /** The failure's type (ApplicationFailure type, or the Temporal failure's name). */
  errorType: string;
  /** Its message, capped (never a large value echoed). */
  message: string;
  /** An operator cancelled the run. */
  cancelled: boolean;
}

/** The type and capped message of what ended a run; undefined for a bug in workflow code. */
export function describeFailure(err: unknown): RunbookFailure | undefined {
  if (!(err instanceof TemporalFailure)) return undefined;
  const cancelled = isCancellation(err);
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  const errorType = cancelled ? 'Cancelled' : cause instanceof ApplicationFailure ? (cause.type ?? 'Error') : cause.name;
  const message = cancelled ? 'cancelled by an operator' : capText(cause.message || err.message || errorType);
  return { errorType, message, cancelled };
}

export interface FailRunbook {
  failedStep: string;
  alert: AlertContext;
  /** Severity of the failure alert; critical (pages) unless the workflow knows better. */
  severity?: (f: RunbookFailure) => Severity;
  /** Progress state: marked failed with the step and message. */
  state: { step: string; error?: string };
  /** Writes the run's record (restore history...); its own failure is swallowed, the alert still goes. */
  record?: (f: RunbookFailure) => Promise<unknown>;
  /** The workflow's failure message: "restore X failed at step: message". */
  failureMessage: (f: RunbookFailure) => string;
}

/**
 * The one failure path of a runbook workflow. Called from its catch block:
 * - a bug in workflow code (TypeError, anything not a Temporal failure) is re-thrown untouched: it
 *   fails the workflow TASK, which Temporal retries, so a fixed deployment resumes the run;
 * - otherwise the state is marked failed, and record and alert run in a non-cancellable scope
 *   (a cancelled scope would drop them);
 * - a cancellation is re-thrown, so the run ends Cancelled, not Failed;
 * - anything else becomes a non-retryable ApplicationFailure of the same type, message capped.
 */
export async function failRunbook(err: unknown, o: FailRunbook): Promise<never> {
  const f = describeFailure(err);
  if (!f) throw err;
  const info = workflowInfo();
  o.state.step = 'failed';
  showStep('failed');
  o.state.error = `${o.failedStep}: ${f.message}`;
  await CancellationScope.nonCancellable(async () => {
    if (o.record) await o.record(f).catch(() => undefined);
    await sendAlert({
      severity: f.cancelled ? 'warning' : (o.severity?.(f) ?? 'critical'),
      dedupKey: `${o.alert.workflow}/${o.failedStep}/${f.errorType}`,
      summary: `${o.alert.subject} ${f.cancelled ? 'was cancelled' : 'failed'} at ${o.failedStep}`,
      workflowId: info.workflowId,
      runId: info.runId,
      // A cancellation is an operator's decision, not a workflow failure (the failure metric counts failedStep).
      ...(f.cancelled ? {} : { failedStep: o.failedStep, errorType: f.errorType, error: f.message }),
      details: { ...(f.cancelled ? { 'cancelled at': o.failedStep } : {}), ...(o.alert.details?.() ?? {}) },
    }).catch(() => undefined); // the failure itself is still reported below
  });
  if (f.cancelled) throw err;
  throw ApplicationFailure.create({ type: f.errorType, message: capText(o.failureMessage(f)), nonRetryable: true });
}

/** The share intake's signal (workers/worker.ts sends it): counts only, never a share. */
export const custodianSharesReady = defineSignal<[{ received: number; threshold: number; keyId: string }]>('custodianSharesReady');

/**
 * Handles custodianSharesReady for a ceremony that waits on custodians (restore, seal/unseal drill,
 * unseal-key rotation): `schema` says what a ready signal is for it; a malformed or premature one (a
 * machine's, fire-and-forget) is ignored with a warning, so the wait goes on until a valid one
 * arrives or its deadline; a valid one goes to `accept`.
 */
export function onCustodianSharesReady<T>(schema: ZodType<T, ZodTypeDef, unknown>, accept: (shares: T) => void): void {
  setHandler(custodianSharesReady, (raw) => {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      log.warn('custodianSharesReady ignored: malformed', { issues: describeIssues(parsed.error.issues.slice(0, 3)) });
      return;
    }
    accept(parsed.data);
  });
}
