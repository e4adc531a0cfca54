// drillFinding — one remediation finding of a DR drill, tracked until it is fixed. Reads like
// docs/runbooks/dr-drills.md ("Findings"): the finding is recorded in the bucket (saveFinding) at
// every change; responders `assign` it and `resolve` it with evidence through validated updates
// (and add a `note`); reminders go out before the due date, and once it is overdue an alert
// repeats (paging from the third). /metrics counts open and overdue findings from the records, and
// the next drill of the scenario re-tests the resolved ones.
import { condition, defineQuery, defineUpdate, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { FindingActivities } from '../../activities/drills/findings';
import type { NotifyActivities } from '../../activities/notify/notify';
import { AssignUpdate, FindingInput, NoteUpdate, ResolveUpdate, type FindingRecord } from '../../common/drills';
import { describeIssues, parseWorkflowInput } from '../../common/validate';
import type { z } from 'zod';
import { describeRun, failRunbook, showStep, showWaitingFor } from '../helpers';
import { ALERT, STORE_IO } from '../profiles';
import { activityQueue } from '../queues';

const { saveFinding } = proxyActivities<FindingActivities>({ ...STORE_IO, taskQueue: activityQueue('notify') });
const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });

export interface FindingProgress {
  step: 'validating input' | 'open' | 'resolved' | 'failed';
  record?: FindingRecord;
  /** When the next reminder or overdue alert goes out. */
  nextReminderAt?: string;
  overdueAlerts: number;
  error?: string;
}

export const progress = defineQuery<FindingProgress>('progress');
export const assign = defineUpdate<FindingRecord, [z.input<typeof AssignUpdate>]>('assign');
export const resolve = defineUpdate<FindingRecord, [z.input<typeof ResolveUpdate>]>('resolve');
export const note = defineUpdate<FindingRecord, [z.input<typeof NoteUpdate>]>('note');

const DAY_MS = 86_400_000;

/** A validator: the payload parses and the finding is still open, else the update is rejected (the run goes on). */
function validator<S extends z.ZodTypeAny>(name: string, schema: S, state: FindingProgress, allowResolved = false) {
  return (raw: unknown) => {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new Error(`${name}: ${describeIssues(parsed.error.issues.slice(0, 3))}`);
    if (!allowResolved && state.record?.status === 'resolved') throw new Error(`${name}: the finding is already resolved`);
  };
}

export async function drillFinding(rawInput?: FindingInput): Promise<FindingRecord> {
  describeRun(rawInput);
  const state: FindingProgress = { step: 'validating input', overdueAlerts: 0 };
  setHandler(progress, () => state);
  const info = workflowInfo();
  const subject = `Drill finding ${info.workflowId}`;
  try {
    const input = parseWorkflowInput('drillFinding', FindingInput, rawInput);
    const openedAt = new Date(Date.now());
    const dueDate = input.dueDate ?? new Date(openedAt.getTime() + 30 * DAY_MS).toISOString().slice(0, 10);
    const record: FindingRecord = {
      findingId: info.workflowId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120),
      workflowId: info.workflowId,
      drillId: input.drillId,
      scenario: input.scenario,
      ...(input.kind ? { kind: input.kind } : {}),
      title: input.title,
      severity: input.severity,
      ...(input.owner ? { owner: input.owner } : {}),
      dueDate,
      ...(input.runbookSection ? { runbookSection: input.runbookSection } : {}),
      status: 'open',
      openedAt: openedAt.toISOString(),
      timeline: [{ at: openedAt.toISOString(), by: 'vault-dr', what: `opened from drill ${input.drillId}, due ${dueDate}${input.owner ? `, owner ${input.owner}` : ''}` }],
    };
    state.record = record;
    state.step = 'open';
    showStep('open');
    let dirty = true;
    const event = (by: string, what: string) => {
      record.timeline.push({ at: new Date(Date.now()).toISOString(), by, what });
      dirty = true;
    };
    setHandler(
      assign,
      (u) => {
        const a = AssignUpdate.parse(u);
        record.owner = a.owner;
        event(a.by, `assigned to ${a.owner}`);
        return record;
      },
      { validator: validator('assign', AssignUpdate, state) },
    );
    setHandler(
      resolve,
      (u) => {
        const r = ResolveUpdate.parse(u);
        record.status = 'resolved';
        record.resolvedAt = new Date(Date.now()).toISOString();
        record.resolvedBy = r.by;
        record.evidence = r.evidence;
        event(r.by, 'resolved');
        return record;
      },
      { validator: validator('resolve', ResolveUpdate, state) },
    );
    setHandler(
      note,
      (u) => {
        const n = NoteUpdate.parse(u);
        event(n.by, `note: ${n.text}`);
        return record;
      },
      { validator: validator('note', NoteUpdate, state, true) },
    );

    const dueEnd = Date.parse(`${dueDate}T23:59:59Z`);
    // Reminders still ahead, soonest first; then the overdue alerts, every overdueEveryDays.
    const reminders = [...new Set(input.remindDaysBefore)].map((d) => dueEnd - d * DAY_MS).filter((t) => t > Date.now()).sort((a, b) => a - b);
    const nextAt = () => reminders[0] ?? dueEnd + state.overdueAlerts * input.overdueEveryDays * DAY_MS;
    const dedupKey = `drillFinding/${info.workflowId}/overdue`;
    showWaitingFor('resolution');
    while (record.status === 'open') {
      if (dirty) {
        dirty = false;
        await saveFinding({ record });
      }
      const at = nextAt();
      state.nextReminderAt = new Date(at).toISOString();
      const wait = at - Date.now();
      if (wait > 0 && (await condition(() => dirty || record.status !== 'open', wait))) continue;
      if (dirty || record.status !== 'open') continue;
      if (reminders.length) {
        reminders.shift();
        const days = Math.max(1, Math.round((dueEnd - Date.now()) / DAY_MS));
        await sendAlert({
          severity: 'info',
          dedupKey: `drillFinding/${info.workflowId}/due-in-${days}d`,
          summary: `${subject} "${record.title}" is due in ${days} day(s) (${dueDate})`,
          workflowId: info.workflowId,
          runId: info.runId,
          details: { owner: record.owner ?? 'nobody (assign it)', scenario: record.scenario, runbook: record.runbookSection ?? '-' },
        });
        event('vault-dr', `reminder: due in ${days} day(s)`);
      } else {
        state.overdueAlerts++;
        const paging = state.overdueAlerts >= 3;
        await sendAlert({
          severity: paging ? 'critical' : 'warning',
          dedupKey,
          summary: `${subject} "${record.title}" is overdue since ${dueDate} (alert ${state.overdueAlerts})`,
          workflowId: info.workflowId,
          runId: info.runId,
          details: { owner: record.owner ?? 'nobody (assign it)', severity: record.severity, scenario: record.scenario, 'escalation level': paging ? 'critical (pages on-call)' : 'warning' },
        });
        event('vault-dr', `overdue alert ${state.overdueAlerts}${paging ? ' (paged)' : ''}`);
      }
    }
    showWaitingFor(undefined);
    await saveFinding({ record });
    if (state.overdueAlerts) {
      await sendAlert({ action: 'resolve', severity: 'warning', dedupKey, summary: `${subject} "${record.title}" resolved by ${record.resolvedBy}`, workflowId: info.workflowId, runId: info.runId });
    }
    state.step = 'resolved';
    showStep('resolved');
    return record;
  } catch (err) {
    return failRunbook(err, {
      failedStep: state.step,
      state,
      alert: { workflow: 'drillFinding', subject },
      failureMessage: (f) => `drill finding ${info.workflowId} failed at ${state.step}: ${f.message}`,
    });
  }
}
