// What a user sees at the end of a run, on Temporal's time-skipping test server with typed stub
// activities: an oversized input fails the workflow at once with a short message (it once made a
// failure larger than Temporal's 2 MiB limit, so the workflow task retried forever and the worker
// log grew a gigabyte a minute); a mistyped backup id in a manual staging restore warns instead
// of paging as a failed restore validation; `backup run --no-prune` says retention was skipped.
import assert from 'node:assert/strict';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import type { AlertRequest } from '../activities/notify/notify';
import type { BackupResult } from '../common/backup';
import { countsAsValidation, type RestoreRecord } from '../common/restore';
import { MAX_INPUT_BYTES, describeIssues, parseWorkflowInput } from '../common/validate';
import { renderRetention } from '../client/backupCommands';
import { backupStubs, restoreStubs, timeSkipping, type Stubs, type TimeSkipping } from './helpers/timeSkipping';

const MiB = 1024 * 1024;
const EventType = temporal.api.enums.v1.EventType;

describe('input bounds and failure messages (unit)', () => {
  const Schema = z.object({ trigger: z.enum(['manual', 'cli']), checks: z.array(z.enum(['vault', 'mail'])).optional() }).strict();

  it('never echoes a received value beyond a short prefix, and names field, expectation and size', () => {
    const big = 'A'.repeat(10_000);
    const r = Schema.safeParse({ trigger: big, checks: ['vault', big], [big]: 1 });
    assert.ok(!r.success);
    const msg = describeIssues(r.error.issues);
    assert.ok(msg.length < 600, `${msg.length} chars`);
    assert.match(msg, /field "trigger": expected one of "manual" \| "cli", received "A{40}"… \(10000 bytes\)/);
    assert.match(msg, /field "checks\.1": expected one of "vault" \| "mail"/);
    assert.match(msg, /field "\(input\)": unknown field\(s\) "A{40}"… \(10000 bytes\)/);
  });

  it('refuses an input over the size bound before looking at any field, naming the size', () => {
    const raw = { trigger: 'x'.repeat(MAX_INPUT_BYTES) };
    assert.throws(
      () => parseWorkflowInput('backupVault', Schema, raw),
      (e: ApplicationFailure) => e.type === 'InvalidInput' && e.nonRetryable && /65550 bytes of JSON, the limit is 65536 bytes/.test(e.message) && e.message.length < 300,
    );
  });
});

describe('workflow outcomes (time-skipping test server)', function () {
  this.timeout(120_000);
  let ts: TimeSkipping;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => ts?.teardown());
  let n = 0;
  const start = (workflow: string, taskQueue: string, input: unknown) => ts.env.client.workflow.start(workflow, { taskQueue, workflowId: `${workflow}-${++n}-${Date.now()}`, args: [input as never] });

  /** The run's failure within `ms` of real time, or why it has none (still running, and its failed tasks). */
  async function failureWithin(h: WorkflowHandle, ms: number): Promise<ApplicationFailure> {
    const outcome = await Promise.race([h.result().then(() => 'completed', (e: unknown) => e), new Promise((r) => setTimeout(() => r('still running'), ms))]);
    if (outcome instanceof WorkflowFailedError && outcome.cause instanceof ApplicationFailure) return outcome.cause;
    const failedTasks = ((await h.fetchHistory()).events ?? []).filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED).length;
    await h.terminate('test: no failure in time').catch(() => undefined);
    return assert.fail(`expected a failed workflow, got: ${String(outcome)} (${failedTasks} workflow task failures)`);
  }

  const alerts: AlertRequest[] = [];
  const sendAlert: Stubs['sendAlert'] = async (req) => {
    alerts.push(req);
    return { sent: true, channels: [], dedupRecord: 'written' as const };
  };

  for (const [workflow, input] of [
    ['backupVault', { trigger: 'x'.repeat(MiB) }],
    ['vaultHealthCheck', { checks: ['x'.repeat(MiB)] }],
    ['alertDeliveryTest', { confirm: 'x'.repeat(MiB) }],
  ] as const) {
    it(`a 1 MiB value in ${workflow}.${Object.keys(input)[0]} fails the workflow at once, non-retryably, with a short message`, async () => {
      await ts.withStubWorker({ sendAlert }, async (tq) => {
        const f = await failureWithin(await start(workflow, tq, input), 15_000);
        assert.equal(f.type, 'InvalidInput');
        assert.equal(f.nonRetryable, true);
        assert.ok(f.message.length < 4096, `${f.message.length} chars`);
        assert.match(f.message, /invalid input: \d+ bytes of JSON, the limit is 65536 bytes/);
      });
    });
  }

  it('a manual staging restore of a backup id that does not exist warns, and is not a failed restore validation; "latest" not found still pages', async () => {
    const cases = [
      { backupId: '20261201T020000Z-deadbeef', severity: 'warning', counts: false },
      { backupId: 'latest', severity: 'critical', counts: true },
    ];
    for (const c of cases) {
      const sent: AlertRequest[] = [];
      const records: RestoreRecord[] = [];
      const stubs = restoreStubs(sent, records, {
        async selectBackup() {
          throw ApplicationFailure.create({ type: 'BackupNotFound', message: `backup ${c.backupId}: manifest not found`, nonRetryable: true });
        },
      });
      await ts.withStubWorker(stubs, async (tq) => {
        const f = await failureWithin(await start('restoreVault', tq, { backupId: c.backupId, target: 'staging', reason: 'manual' }), 15_000);
        assert.equal(f.type, 'BackupNotFound');
      });
      const failed = sent.find((a) => a.failedStep === 'selectBackup');
      assert.equal(failed?.severity, c.severity, c.backupId);
      assert.equal(records.length, 1);
      assert.equal(records[0]!.errorType, 'BackupNotFound');
      assert.equal(countsAsValidation(records[0]!), c.counts, `${c.backupId}: counts as a restore validation`);
    }
  });

  it('backupVault with prune: false says retention was skipped, and the CLI prints so', async () => {
    const { stubs, pruned } = backupStubs([], { sendAlert });
    await ts.withStubWorker(stubs, async (tq) => {
      const skipped = (await (await start('backupVault', tq, { trigger: 'cli', prune: false })).result()) as BackupResult;
      assert.equal(pruned(), false);
      assert.equal(skipped.retention, 'skipped');
      assert.equal(renderRetention(skipped), '  retention skipped (--no-prune)');
      const applied = (await (await start('backupVault', tq, { trigger: 'cli' })).result()) as BackupResult;
      assert.equal(applied.retention, 'applied');
      assert.equal(renderRetention(applied), '  retention deleted nothing; 3 kept');
    });
  });
});
