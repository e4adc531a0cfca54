// migrateVps's wait for the cutover on Temporal's time-skipping test server: nobody approves for a
// day (reminders, escalation, ApprovalTimeout, then the compensations in reverse order and one
// failure alert naming awaitCutover), an approval after hours (the switch recorded, the checks run
// again), and a refusal. Activities are typed stubs with the real names (the real ones run against
// the local hosts in test/migrateVps.test.ts).
import assert from 'node:assert/strict';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { AlertRequest } from '../activities/notify/notify';
import type { MigrateResult } from '../common/migration';
import { timeSkipping, type TimeSkipping } from './helpers/timeSkipping';
import { FP, migrationStubs } from './helpers/migrationStubs';

const HOUR = 3600_000;

describe('migrateVps cutover wait (time-skipping test server)', function () {
  this.timeout(300_000);
  let ts: TimeSkipping;
  let n = 0;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => ts?.teardown());

  const start = (tq: string, input: Record<string, unknown> = {}) =>
    ts.env.client.workflow.start('migrateVps', { taskQueue: tq, workflowId: `migrate-wait-${++n}-${Date.now()}`, args: [{ newHost: { address: '10.0.0.2', hostKeySha256: FP }, oldHost: false, secretSource: 'live', ...input } as never] });
  const waitForStep = async (h: WorkflowHandle, step: string) => {
    for (let i = 0; i < 200; i++) {
      if ((await h.query<{ step: string }>('progress')).step === step) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`never reached ${step}`);
  };

  it('nobody approves the cutover: reminders, escalation, ApprovalTimeout after 24 h, then compensations in reverse order and one failure alert', async () => {
    const alerts: AlertRequest[] = [];
    const calls: string[] = [];
    await ts.withStubWorker(migrationStubs(alerts, calls), async (tq) => {
      const h = await start(tq);
      const err = await h.result().then(() => assert.fail('should time out'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
      assert.equal(err.cause.type, 'ApprovalTimeout');
      assert.match(err.cause.message, /failed at awaitCutover: no cutover approval within 1440 minutes/);
      assert.match(err.cause.message, /undone: previous mail configuration .* restored .*; previous authorized_keys restored/);
      assert.deepEqual(calls.filter((c) => c.startsWith('restore')), ['restoreMailConfig', 'restoreSshKeys'], 'reverse order');
      const reminders = alerts.filter((a) => a.dedupKey.includes('/waiting-for-cutover-approval/'));
      assert.equal(reminders.length, 23);
      assert.deepEqual(reminders.slice(0, 3).map((a) => a.severity), ['warning', 'warning', 'critical']);
      const failures = alerts.filter((a) => a.failedStep);
      assert.equal(failures.length, 1, 'one failure alert');
      assert.equal(failures[0]!.failedStep, 'awaitCutover');
      const count = (await h.fetchHistory()).events?.length ?? 0;
      assert.ok(count < 400, `${count} history events for a 24 h wait`);
    });
  });

  it('an approval after 5 h records the switch and runs the checks again; a bad payload is refused by the validator', async () => {
    const alerts: AlertRequest[] = [];
    const calls: string[] = [];
    await ts.withStubWorker(migrationStubs(alerts, calls), async (tq) => {
      const h = await start(tq);
      await waitForStep(h, 'awaitCutover');
      await ts.env.sleep(5.5 * HOUR);
      await assert.rejects(h.executeUpdate('approveCutover', { args: [{ who: 'alice' }] }), (e: Error) => /field "why"/.test(String((e.cause as Error | undefined)?.message ?? e.message)));
      await h.executeUpdate('approveCutover', { args: [{ who: 'alice', why: 'CHG-42' }] });
      const r = (await h.result()) as MigrateResult;
      assert.equal(r.status, 'migrated');
      assert.equal(r.cutover?.who, 'alice');
      assert.deepEqual(calls.filter((c) => c.startsWith('sendTestEmail')), ['sendTestEmail before cutover', 'sendTestEmail after cutover']);
      assert.ok(!calls.some((c) => c.startsWith('restore')), 'nothing undone');
      assert.ok(r.timings.some((t) => t.step === 'awaitCutover' && t.seconds >= 5.5 * 3600));
    });
  });

  it('a refused cutover ends CutoverRefused and undoes the new host changes', async () => {
    const alerts: AlertRequest[] = [];
    const calls: string[] = [];
    await ts.withStubWorker(migrationStubs(alerts, calls), async (tq) => {
      const h = await start(tq);
      await waitForStep(h, 'awaitCutover');
      await h.executeUpdate('approveCutover', { args: [{ who: 'bob', why: 'old host recovered', approve: false }] });
      const err = await h.result().then(() => assert.fail('should fail'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'CutoverRefused');
      assert.match(err.cause.message, /refused by bob: old host recovered/);
      assert.deepEqual(calls.filter((c) => c.startsWith('restore')), ['restoreMailConfig', 'restoreSshKeys']);
    });
  });
});
