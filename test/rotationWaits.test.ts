// rotateCredential's wait for a person (third-party channel secrets, hooks not wired) on Temporal's
// time-skipping test server with typed stub activities: a malformed or premature confirmRotated is
// rejected by its validator and the wait goes on; reminders come on the hour and escalate; a valid
// confirmation after 5 h lets the rotation verify and finish; nobody confirming fails with
// ApprovalTimeout and a failure alert. The real activities are tested in test/rotation.test.ts.
import assert from 'node:assert/strict';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { AlertRequest } from '../activities/notify/notify';
import type { RotationPlan } from '../activities/emergency/rotation';
import type { RotateResult } from '../common/rotation';
import { waitForStep } from './helpers/inspect';
import { timeSkipping, type Stubs, type TimeSkipping } from './helpers/timeSkipping';

const HOUR = 3600_000;

describe('rotateCredential waits for a person (time-skipping test server)', function () {
  this.timeout(180_000);
  let ts: TimeSkipping;
  let n = 0;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => ts?.teardown());

  const plan: RotationPlan = { credentialClass: 'channel-secret', scope: 'slack', rotationId: 'x/channel-secret/slack', kvPath: 'secret/data/vault-dr/alerting/slack', mode: 'person', personTask: 'issue a new Slack webhook' };
  const stubs = (alerts: AlertRequest[], calls: string[]) =>
    ({
      planRotation: async () => plan,
      issueNewCredential: async () => ({ ok: true, kvVersion: 3, detail: 'at version 3' }),
      verifyNewCredential: async (req: { sinceVersion?: number }) => {
        calls.push(`verifyNew since ${req.sinceVersion}`);
        return { ok: true, detail: 'the new Slack webhook accepted a probe message' };
      },
      discardNewCredential: async () => ({ ok: true, detail: '' }),
      revokeOldCredentials: async () => ({ ok: true, revoked: 0, detail: 'revoked by the person' }),
      verifyOldRefused: async (req: { oldRevokedAttested?: boolean }) => {
        calls.push(`verifyOld attested=${req.oldRevokedAttested}`);
        return { ok: !!req.oldRevokedAttested, detail: 'the old Slack webhook is refused (404)' };
      },
      sendAlert: async (a: AlertRequest) => {
        alerts.push(a);
        return { sent: ['email'], deduplicated: false };
      },
    }) as unknown as Stubs;
  const start = (tq: string, input: Record<string, unknown> = {}) =>
    ts.env.client.workflow.start('rotateCredential', { taskQueue: tq, workflowId: `rot-wait-${++n}-${Date.now()}`, args: [{ credentialClass: 'channel-secret', scope: 'slack', confirmTimeoutMinutes: 600, ...input }] });
  const waitFor = (h: Awaited<ReturnType<typeof start>>, step: string) => waitForStep(h, step, { intervalMs: 50 });
  const reminders = (alerts: AlertRequest[]) => alerts.filter((a) => a.dedupKey.includes('/waiting-for-rotation-confirmed/'));

  it('rejects malformed confirmations, reminds hourly, and finishes once a person confirms', async () => {
    const alerts: AlertRequest[] = [];
    const calls: string[] = [];
    await ts.withStubWorker(stubs(alerts, calls), async (tq) => {
      const h = await start(tq);
      const p = await waitFor(h, 'awaitRotationConfirmed');
      assert.match(p.waitingFor ?? '', /vaultdr rotate confirm/);
      await ts.env.sleep(5.5 * HOUR);
      const reject = (args: unknown, re: RegExp) => assert.rejects(h.executeUpdate('confirmRotated', { args: [args as never] }), (e: Error) => re.test(String((e.cause as Error | undefined)?.message ?? e.message)) || assert.fail(String((e.cause as Error | undefined)?.message ?? e.message)));
      await reject({ who: '', newValueStored: true, oldRevoked: true }, /field "who"/);
      await reject({ who: 'Dana', newValueStored: false, oldRevoked: true }, /field "newValueStored": expected true/);
      await reject({ who: 'Dana', newValueStored: true, oldRevoked: 'yes' }, /field "oldRevoked"/);
      assert.equal((await h.query<{ step: string }>('progress')).step, 'awaitRotationConfirmed', 'a rejected update changed the run');
      await h.executeUpdate('confirmRotated', { args: [{ who: 'Dana', newValueStored: true, oldRevoked: true }] });
      const r = (await h.result()) as RotateResult;
      assert.deepEqual({ rotated: r.rotated, newVerified: r.newVerified, oldRefused: r.oldRefused, oldLeftInPlace: r.oldLeftInPlace }, { rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false });
      assert.match(r.detail, /confirmed by Dana/);
      assert.deepEqual(calls, ['verifyNew since 3', 'verifyOld attested=true']);
      const rem = reminders(alerts);
      assert.equal(rem.length, 5, 'one reminder an hour');
      assert.deepEqual(rem.map((a) => a.severity), ['warning', 'warning', 'critical', 'critical', 'critical'], 'escalates at the third reminder');
    });
  });

  it('nobody confirming fails the run with ApprovalTimeout and a failure alert', async () => {
    const alerts: AlertRequest[] = [];
    await ts.withStubWorker(stubs(alerts, []), async (tq) => {
      const h = await start(tq, { confirmTimeoutMinutes: 180, training: true });
      const err = await h.result().then(() => assert.fail('should time out'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
      assert.equal(err.cause.type, 'ApprovalTimeout');
      assert.match(err.cause.message, /TRAINING: rotation of channel-secret failed at awaitRotationConfirmed/);
      const failed = alerts.find((a) => a.failedStep === 'awaitRotationConfirmed');
      assert.equal(failed?.severity, 'warning', 'a training run does not page');
    });
  });
});
