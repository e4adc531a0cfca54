// Long waits, cancellation and workflow bugs on Temporal's time-skipping test server: a production
// restore nobody approves for 24 h, a restored cluster nobody unseals for 24 h, an approval after
// 23 h, a cancel during the wait and during a backup, and a bug in workflow code. Each run's
// history events are counted: a wait must cost O(reminders), never O(time) (the old 5 s unseal
// loop made ~17,000 iterations a day, past Temporal's 51,200-event history limit).
// Activities are typed stubs with the real activities' names (the failures and waits must be
// injected); the real ones run in test/restore.test.ts against the real stack.
import assert from 'node:assert/strict';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { AlertRequest } from '../activities/notify/notify';
import type { RestoreActivities } from '../activities/restore/restore';
import type { RestoreRecord } from '../common/restore';
import type { RestoreProgress } from '../workflows/restore/restoreVault';
import { backupStubs, plan, restoreStubs, timeSkipping, type Stubs, type TimeSkipping } from './helpers/timeSkipping';
const HOUR = 3600_000;
const EventType = temporal.api.enums.v1.EventType;

describe('long waits, cancellation and workflow bugs (time-skipping test server)', function () {
  this.timeout(300_000);
  let ts: TimeSkipping;
  let n = 0;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => ts?.teardown());
  const withStubWorker = <T>(activities: Stubs, fn: (taskQueue: string) => Promise<T>) => ts.withStubWorker(activities, fn);

  const startRestore = (taskQueue: string, input: Record<string, unknown>) =>
    ts.env.client.workflow.start('restoreVault', { taskQueue, workflowId: `restore-${++n}-${Date.now()}`, args: [{ backupId: plan.backupId, target: 'production', requestedBy: 'Alice', ...input } as never] });

  async function events(h: WorkflowHandle) {
    return (await h.fetchHistory()).events ?? [];
  }
  /** Workflow time from the run's first to its last history event, in hours. */
  async function elapsedHours(h: WorkflowHandle): Promise<number> {
    const ev = await events(h);
    const ms = (e: temporal.api.history.v1.IHistoryEvent) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    return (ms(ev.at(-1)!) - ms(ev[0]!)) / HOUR;
  }
  const waitForStep = async (h: WorkflowHandle, step: string) => {
    for (let i = 0; i < 200; i++) {
      const p = await h.query<RestoreProgress>('progress');
      if (p.step === step) return p;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`never reached ${step}`);
  };
  const reminders = (alerts: AlertRequest[], what: string) => alerts.filter((a) => a.dedupKey.includes(`/waiting-for-${what}/`));

  it('a production restore nobody approves fails with ApprovalTimeout after 24 h, reminding hourly and escalating, in a bounded history', async () => {
    const alerts: AlertRequest[] = [];
    const records: RestoreRecord[] = [];
    await withStubWorker(restoreStubs(alerts, records), async (tq) => {
      const h = await startRestore(tq, {});
      const err = await h.result().then(() => assert.fail('should time out'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
      assert.equal(err.cause.type, 'ApprovalTimeout');
      assert.match(err.cause.message, /failed at awaitApproval: no approval within 1440 minutes/);
      const elapsedH = await elapsedHours(h);
      assert.ok(elapsedH >= 24 && elapsedH < 25, `${elapsedH} h`);
      const r = reminders(alerts, 'approval');
      assert.equal(r.length, 23, 'one reminder an hour until the 24 h deadline');
      assert.deepEqual(r.slice(0, 3).map((a) => a.severity), ['warning', 'warning', 'critical'], 'escalates to the pager at the third reminder');
      assert.ok(r.slice(2).every((a) => a.severity === 'critical' && /escalated/.test(a.summary)));
      const failed = alerts.find((a) => a.failedStep === 'awaitApproval');
      assert.equal(failed?.errorType, 'ApprovalTimeout');
      assert.equal(records.at(-1)?.status, 'failed');
      assert.equal(records.at(-1)?.requestedBy, 'Alice');
      const count = (await events(h)).length;
      process.stdout.write(`      24 h approval wait: ${count} history events, ${r.length} reminders\n`);
      assert.ok(count < 12 * r.length + 60, `${count} events for ${r.length} reminders`);
      assert.ok(count < 400, `${count} events`);
    });
  });

  it('an approval after 22.5 h proceeds; the starter cannot approve their own restore (two-person rule)', async () => {
    const alerts: AlertRequest[] = [];
    const records: RestoreRecord[] = [];
    await withStubWorker(restoreStubs(alerts, records), async (tq) => {
      const h = await startRestore(tq, {});
      const p = await waitForStep(h, 'awaitApproval');
      assert.equal(p.requestedBy, 'Alice');
      assert.match(p.waitingFor ?? '', /someone other than Alice approves/);
      await ts.env.sleep(22.5 * HOUR); // between reminders: nothing in flight when the update lands
      for (const who of ['Alice', '  alice ']) {
        await assert.rejects(h.executeUpdate('approveRestore', { args: [{ approve: true, who, why: 'mine' }] }), (e: Error) =>
          /two-person rule/.test(String((e.cause as Error | undefined)?.message ?? e.message)),
        );
      }
      await h.executeUpdate('approveRestore', { args: [{ approve: true, who: 'Bob', why: 'disk loss on vault-1' }] });
      const r = (await h.result()) as RestoreRecord;
      assert.equal(r.status, 'verified');
      assert.equal(r.requestedBy, 'Alice');
      assert.equal(r.approval?.who, 'Bob');
      assert.equal(records.at(-1)?.approval?.who, 'Bob');
      assert.equal(reminders(alerts, 'approval').length, 22);
      const count = (await events(h)).length;
      process.stdout.write(`      approval after 22.5 h: ${count} history events\n`);
      assert.ok(count < 400, `${count} events`);
    });
  });

  it('a production restore needs requestedBy', async () => {
    await withStubWorker(restoreStubs([], []), async (tq) => {
      const h = await startRestore(tq, { requestedBy: undefined });
      const err = await h.result().catch((e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'InvalidInput');
      assert.match(err.cause.message, /field "requestedBy": required for a production restore/);
    });
  });

  for (const hours of [1, 24]) {
    it(`a restored cluster nobody unseals fails after ${hours} h, polling inside the activity, paging hourly, in a bounded history`, async () => {
      const alerts: AlertRequest[] = [];
      const polls: string[] = [];
      const stubs = restoreStubs(alerts, [], {
        async pollTargetUnsealed(req) {
          polls.push(req.untilIso);
          return { done: false, detail: `${plan.targetAddress} is sealed` };
        },
        // The code before pollUntil polled this one every 5 s from a workflow timer.
        async checkTargetUnsealed() {
          return { unsealed: false, detail: `${plan.targetAddress} is sealed` };
        },
      });
        await withStubWorker(stubs, async (tq) => {
        const h = await startRestore(tq, { approvalTimeoutMinutes: hours * 60 });
        await waitForStep(h, 'awaitApproval');
        await h.executeUpdate('approveRestore', { args: [{ approve: true, who: 'Bob', why: 'rebuild' }] });
        const err = await h.result().then(() => assert.fail('should time out'), (e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
        assert.equal(err.cause.type, 'ApprovalTimeout');
        assert.match(err.cause.message, new RegExp(`failed at awaitTargetUnsealed: no target unsealed within ${hours * 60} minutes`));
        const elapsedH = await elapsedHours(h);
        assert.ok(elapsedH >= hours && elapsedH < hours + 1, `${elapsedH} h`);
        const r = reminders(alerts, 'target-unsealed');
        assert.equal(r.length, hours - 1);
        assert.ok(r.every((a) => a.severity === 'critical' && a.details?.now === `${plan.targetAddress} is sealed`));
        assert.ok(polls.length <= 2 * hours + 2, `${polls.length} activity calls for ${hours} h`);
        const count = (await events(h)).length;
        process.stdout.write(`      ${hours} h unseal wait: ${count} history events, ${polls.length} polling activity calls, ${r.length} reminders\n`);
        // O(hours), never O(time): 25 events per hour of reminders and polls, plus the fixed cost of the
        // run's steps (each step also upserts its search attributes since they were added).
        assert.ok(count < 100 + 25 * hours, `${count} events for ${hours} h`);
      });
    });
  }

  it('cancelling a restore during the approval wait ends it Cancelled, with its record and alert', async () => {
    const alerts: AlertRequest[] = [];
    const records: RestoreRecord[] = [];
    await withStubWorker(restoreStubs(alerts, records), async (tq) => {
      const h = await startRestore(tq, {});
      await waitForStep(h, 'awaitApproval');
      // Between reminders (nothing in flight), and with time held still until the run has closed:
      // the test server rejects a cancelled timer that its own time skipping fired meanwhile.
      await ts.env.sleep(2.5 * HOUR);
      await h.cancel();
      for (let i = 0; i < 200 && (await h.describe()).status.name === 'RUNNING'; i++) await new Promise((r) => setTimeout(r, 50));
      const err = await h.result().catch((e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
      assert.equal((await h.describe()).status.name, 'CANCELLED');
      assert.equal(records.at(-1)?.status, 'cancelled');
      assert.equal(records.at(-1)?.failedStep, 'awaitApproval');
      const a = alerts.find((x) => /was cancelled at awaitApproval/.test(x.summary));
      assert.ok(a, alerts.map((x) => x.summary).join('\n'));
      assert.equal(a.severity, 'warning');
      assert.equal(a.failedStep, undefined, 'a cancellation is not counted as a workflow failure');
    });
  });

  it('cancelling a running backup ends it Cancelled, with its alert, and no retention', async () => {
    const alerts: AlertRequest[] = [];
    const { stubs, pruned } = backupStubs(alerts, {
      // A long upload that notices the cancellation through its heartbeat, as the real one does.
      async snapshotToStore() {
        const ctx = Context.current();
        for (;;) {
          ctx.heartbeat({ bytes: 1 });
          await Promise.race([ctx.cancelled, new Promise((r) => setTimeout(r, 200))]);
        }
      },
    });
    await withStubWorker(stubs, async (taskQueue) => {
      const h = await ts.env.client.workflow.start('backupVault', { taskQueue, workflowId: `backup-cancel-${Date.now()}`, args: [{}] });
      for (let i = 0; i < 200 && (await h.query<{ step: string }>('progress')).step !== 'snapshotToStore'; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      await h.cancel();
      for (let i = 0; i < 200 && (await h.describe()).status.name === 'RUNNING'; i++) await new Promise((r) => setTimeout(r, 50));
      const err = await h.result().catch((e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
      assert.equal((await h.describe()).status.name, 'CANCELLED');
      assert.ok(alerts.some((a) => /Vault backup .* was cancelled at snapshotToStore/.test(a.summary)), alerts.map((a) => a.summary).join('\n'));
      assert.equal(pruned(), false);
    });
  });

  it('a bug in workflow code fails the workflow task (retried), not the workflow', async () => {
    // selectBackup answering null makes the workflow read `null.backupId`: a TypeError in workflow code.
    const stubs = restoreStubs([], [], { selectBackup: (async () => null) as unknown as RestoreActivities['selectBackup'] });
    await withStubWorker(stubs, async (tq) => {
      const h = await startRestore(tq, { target: 'staging', requestedBy: undefined });
      let failedTasks: temporal.api.history.v1.IHistoryEvent[] = [];
      for (let i = 0; i < 100 && failedTasks.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        failedTasks = (await events(h)).filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
      }
      assert.ok(failedTasks.length > 0, 'no WorkflowTaskFailed event');
      assert.match(failedTasks[0]!.workflowTaskFailedEventAttributes?.failure?.message ?? '', /backupId|null/);
      assert.equal((await h.describe()).status.name, 'RUNNING', 'the run must wait for a fixed deployment, not fail');
      await h.terminate('test done');
    });
  });
});
