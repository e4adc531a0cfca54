// sealUnsealDrill target "ha": its wait for the custodians' shares on Temporal's time-skipping test
// server, with typed stub activities in place of the HA cluster (the real path is
// test/haSealDrill.test.ts): reminders come every remindEveryMinutes and never escalate (a drill
// never pages, even past the third reminder where other waits page); shares arriving after two
// reminders let the drill finish; nobody submitting fails the run at the deadline with
// ApprovalTimeout, and the non-cancellable cleanup still brings every node back and checks the
// cluster before the failure alert; a cleanup that cannot restore the cluster alerts critical.
import assert from 'node:assert/strict';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { AlertRequest } from '../activities/notify/notify';
import type { SealDrillResult } from '../common/rotation';
import type { SealDrillProgress } from '../workflows/emergency/sealUnsealDrill';
import { waitForStep } from './helpers/inspect';
import { timeSkipping, type Stubs, type TimeSkipping } from './helpers/timeSkipping';

const MINUTE = 60_000;

describe('sealUnsealDrill target ha waits for the custodians (time-skipping test server)', function () {
  this.timeout(120_000);
  let ts: TimeSkipping;
  let n = 0;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => ts?.teardown());

  /** The HA drill's activities as stubs: each call is recorded ("restoreStandbys all"), alerts kept. */
  const stubs = (calls: string[], alerts: AlertRequest[], over: Record<string, unknown> = {}) =>
    ({
      checkClusterHealthy: async () => (calls.push('checkClusterHealthy'), { healthy: true, leader: 'bao-2', nodes: [], problems: [] }),
      stopStandbys: async (req: { drillId: string }) => (calls.push('stopStandbys'), { address: 'http://127.0.0.1:8211', stagingId: req.drillId, node: 'bao-1', standbys: ['bao-2', 'bao-3'], canaryPath: 'secret/data/drill/c' }),
      openUnsealIntake: async () => (calls.push('openUnsealIntake'), { endpoint: 'http://127.0.0.1:1/shares/' }),
      sealActiveNode: async () => (calls.push('sealActiveNode'), { ms: 1, detail: 'bao-1 sealed' }),
      proveHaRefuses: async () => (calls.push('proveHaRefuses'), { refused: true, refusedAfterMs: 1, detail: 'refused through HAProxy' }),
      restoreStandbys: async (req: { scope: string }) => (calls.push(`restoreStandbys ${req.scope}`), { ms: 1, started: [], custodyUnsealed: [], leader: 'bao-2', detail: `${req.scope} back` }),
      proveHaServes: async () => (calls.push('proveHaServes'), { serves: true, servedBy: 'bao-2', detail: 'canary reads back through HAProxy' }),
      closeUnsealIntake: async () => void calls.push('closeUnsealIntake'),
      sendAlert: async (a: AlertRequest) => {
        alerts.push(a);
        calls.push(`sendAlert ${a.severity}`);
        return { sent: true, channels: [], dedupRecord: 'written' as const };
      },
      ...over,
    }) as unknown as Stubs;
  const start = (tq: string, input: Record<string, unknown> = {}) => ts.env.client.workflow.start('sealUnsealDrill', { taskQueue: tq, workflowId: `seal-wait-${++n}-${Date.now()}`, args: [{ target: 'ha', ...input }] });
  const waitFor = (h: Awaited<ReturnType<typeof start>>, step: string) => waitForStep<SealDrillProgress>(h, step, { intervalMs: 50 });
  const reminders = (alerts: AlertRequest[]) => alerts.filter((a) => a.dedupKey.includes('/waiting-for-custodian-shares/'));

  it('reminds every 15 min without ever paging; shares after two reminders let the drill finish', async () => {
    const calls: string[] = [];
    const alerts: AlertRequest[] = [];
    await ts.withStubWorker(stubs(calls, alerts), async (tq) => {
      const h = await start(tq, { unsealTimeoutMinutes: 120, remindEveryMinutes: 15 });
      const p = await waitFor(h, 'awaitDrillShares');
      assert.match(p.waitingFor ?? '', /vaultdr keys submit-share .* SHARE_FILE \(the shares unseal bao-1/);
      await ts.env.sleep(35 * MINUTE);
      assert.equal((await h.query<SealDrillProgress>('progress')).step, 'awaitDrillShares');
      await h.signal('custodianSharesReady', { received: 3, threshold: 3, keyId: 'openbao:http://127.0.0.1:8211' });
      const r = (await h.result()) as SealDrillResult;
      assert.equal(r.servesAgain, true);
      assert.equal(r.sharesUsed, 3);
      assert.deepEqual(r.ha, { sealedNode: 'bao-1', standbys: ['bao-2', 'bao-3'], leaderAfter: 'bao-2' });
      const rem = reminders(alerts);
      assert.equal(rem.length, 2, 'one reminder every 15 minutes');
      assert.deepEqual(rem.map((a) => a.severity), ['warning', 'warning']);
      assert.match(rem[0]!.details?.instruction ?? '', /submit-share/);
      assert.deepEqual(
        calls.filter((c) => !c.startsWith('sendAlert')),
        ['checkClusterHealthy', 'stopStandbys', 'openUnsealIntake', 'sealActiveNode', 'proveHaRefuses', 'restoreStandbys quorum', 'proveHaServes', 'restoreStandbys all', 'checkClusterHealthy', 'closeUnsealIntake'],
      );
    });
  });

  it('nobody submitting: ApprovalTimeout at the deadline, reminders never escalate, and the cleanup brings every node back before the alert', async () => {
    const calls: string[] = [];
    const alerts: AlertRequest[] = [];
    await ts.withStubWorker(stubs(calls, alerts), async (tq) => {
      const h = await start(tq, { unsealTimeoutMinutes: 90, remindEveryMinutes: 15 });
      const err = await h.result().then(() => assert.fail('should time out'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
      assert.equal(err.cause.type, 'ApprovalTimeout');
      assert.match(err.cause.message, /failed at awaitDrillShares: no custodian shares within 90 minutes/);
      const rem = reminders(alerts);
      assert.equal(rem.length, 5, 'a reminder every 15 minutes until the deadline');
      assert.ok(
        rem.every((a) => a.severity === 'warning'),
        `a drill never pages: ${rem.map((a) => a.severity).join(',')}`,
      );
      // After the deadline: the intake closed, every node back, the cluster checked, then the (warning) failure alert.
      assert.deepEqual(calls.slice(calls.indexOf('closeUnsealIntake')), ['closeUnsealIntake', 'restoreStandbys all', 'checkClusterHealthy', 'sendAlert warning']);
      assert.ok(!calls.includes('restoreStandbys quorum') && !calls.includes('proveHaServes'));
      const failed = alerts.find((a) => a.failedStep === 'awaitDrillShares');
      assert.equal(failed?.severity, 'warning', 'a failed drill is a finding, not an outage');
      const p = await h.query<SealDrillProgress>('progress');
      assert.equal(p.ha?.restored, true);
      assert.equal(p.clusterLeftDegraded, undefined);
    });
  });

  it('at the deadline a cleanup that cannot bring the cluster back alerts critical and names what is missing', async () => {
    const calls: string[] = [];
    const alerts: AlertRequest[] = [];
    const cannot = async (req: { scope: string }) => {
      calls.push(`restoreStandbys ${req.scope}`);
      throw ApplicationFailure.create({ type: 'HaNodeDidNotRejoin', message: 'vault: the seal drill could not bring every node back within 180s: bao-3 did not start', nonRetryable: true });
    };
    await ts.withStubWorker(stubs(calls, alerts, { restoreStandbys: cannot }), async (tq) => {
      const h = await start(tq, { unsealTimeoutMinutes: 30, remindEveryMinutes: 15 });
      const err = await h.result().then(() => assert.fail('should time out'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
      assert.equal(err.cause.type, 'ApprovalTimeout');
      assert.match(err.cause.message, /THE HA CLUSTER IS LEFT DEGRADED: .*bao-3 did not start/);
      const degraded = alerts.find((a) => a.dedupKey === 'sealUnsealDrill/clusterLeftDegraded');
      assert.equal(degraded?.severity, 'critical');
      assert.equal(alerts.find((a) => a.failedStep === 'awaitDrillShares')?.severity, 'critical', 'the run itself alerts critical once the cluster is left degraded');
      assert.match((await h.query<SealDrillProgress>('progress')).clusterLeftDegraded ?? '', /bao-3 did not start/);
    });
  });
});
