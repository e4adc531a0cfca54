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
  // smtp-relay with rotation.host: the wait for a responder who stores the relay provider's new login in Vault.
  const relayPlan: RotationPlan = {
    credentialClass: 'smtp-relay',
    scope: 'relay@example.org',
    rotationId: 'x/smtp-relay/relay@example.org',
    kvPath: 'secret/data/vault-dr/credentials/smtp-relay/relay@example.org',
    mode: 'person',
    hook: { name: 'the mail host adapter', wired: true },
    relay: { oldVersion: 1, intakeFolder: 'secret/data/vault-dr/credentials/' },
    personTask: 'get a new relay login … then name the path: vaultdr rotate relay-stored <workflowId> --who NAME --path secret/data/vault-dr/credentials/smtp-relay/relay@example.org',
  };
  const relayStubs = (alerts: AlertRequest[], calls: string[], applyOutcomes: boolean[], gate?: Promise<void>) =>
    ({
      planRotation: async () => relayPlan,
      issueNewCredential: async () => assert.fail('issueNewCredential must not run for a provider-issued relay login'),
      applyRelayCredential: async (req: { source: { kvPath: string; version?: number } }) => {
        calls.push(`apply ${req.source.kvPath}@${req.source.version ?? 'latest'}`);
        if (gate && calls.length === 1) await gate;
        const ok = applyOutcomes.shift() ?? true;
        return { ok, kvVersion: 3, detail: ok ? 'written to Postfix and reloaded' : `nothing is stored at ${req.source.kvPath}` };
      },
      verifyNewCredential: async () => {
        calls.push('verifyNew');
        return { ok: true, detail: 'a probe relayed through the host was accepted by the relay (250)' };
      },
      discardNewCredential: async () => ({ ok: true, detail: '' }),
      revokeOldCredentials: async () => ({ ok: true, revoked: 0, detail: 'the provider revokes it' }),
      verifyOldRefused: async (req: { oldRevokedAttested?: boolean }) => {
        calls.push(`verifyOld attested=${req.oldRevokedAttested}`);
        return { ok: true, detail: 'the relay refuses the old login (535)' };
      },
      sendAlert: async (a: AlertRequest) => {
        alerts.push(a);
        return { sent: ['email'], deduplicated: false };
      },
    }) as unknown as Stubs;
  /** Waits until the run is waiting again after its k-th applyRelayCredential. */
  const waitApplied = async (h: Awaited<ReturnType<typeof start>>, k: number) => {
    for (let i = 0; i < 200; i++) {
      const p = await h.query<{ step: string; completed: string[]; log: string[] }>('progress');
      if (p.step === 'awaitRelayPasswordStored' && p.completed.filter((c) => c === 'applyRelayCredential').length === k) return p;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`never waiting again after apply #${k}`);
  };
  const startRelay = (tq: string) => ts.env.client.workflow.start('rotateCredential', { taskQueue: tq, workflowId: `rot-relay-${++n}-${Date.now()}`, args: [{ credentialClass: 'smtp-relay', scope: 'relay@example.org', confirmTimeoutMinutes: 600 }] });

  it('smtp-relay: rejects a pasted password, a path outside the rotation folder or a premature store, reminds, waits again when nothing usable is stored, then applies and verifies', async () => {
    const alerts: AlertRequest[] = [];
    const calls: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    await ts.withStubWorker(relayStubs(alerts, calls, [false, true], gate), async (tq) => {
      const h = await startRelay(tq);
      const p = await waitFor(h, 'awaitRelayPasswordStored');
      assert.match(p.waitingFor ?? '', new RegExp(`relay-stored ${h.workflowId} --who NAME --path secret/data/vault-dr/credentials/smtp-relay/`));
      await ts.env.sleep(1.5 * HOUR);
      const reject = (args: unknown, re: RegExp) => assert.rejects(h.executeUpdate('relayPasswordStored', { args: [args as never] }), (e: Error) => re.test(String((e.cause as Error | undefined)?.message ?? e.message)) || assert.fail(String((e.cause as Error | undefined)?.message ?? e.message)));
      const path = relayPlan.kvPath!;
      await reject({ who: 'Dana', kvPath: path, oldRevoked: true, password: 'hunter2-pasted' }, /password/);
      await reject({ who: 'Dana', kvPath: 'secret/data/vault-dr/alerting/slack', oldRevoked: true }, /must be under secret\/data\/vault-dr\/credentials\//);
      await reject({ who: 'Dana', kvPath: 'secret/data/vault-dr/credentials/../alerting/x', oldRevoked: true }, /kvPath/);
      await reject({ who: 'Dana', kvPath: path, oldRevoked: 'yes' }, /field "oldRevoked"/);
      assert.equal((await h.query<{ step: string }>('progress')).step, 'awaitRelayPasswordStored', 'a rejected update changed the run');
      await h.executeUpdate('relayPasswordStored', { args: [{ who: 'Dana', kvPath: path, oldRevoked: false }] });
      // Premature: while the stored login is being applied, another store is refused.
      await waitFor(h, 'applyRelayCredential');
      await reject({ who: 'Dana', kvPath: path, oldRevoked: true }, /is not waiting for a stored relay login \(step: applyRelayCredential\)/);
      open();
      // Nothing usable there: the run waits again, saying why.
      const again = await waitApplied(h, 1);
      assert.match(again.log.join('; '), /nothing is stored at/);
      await h.executeUpdate('relayPasswordStored', { args: [{ who: 'Dana', kvPath: path, version: 4, oldRevoked: true }] });
      const r = (await h.result()) as RotateResult;
      assert.deepEqual({ rotated: r.rotated, newVerified: r.newVerified, oldRefused: r.oldRefused, oldLeftInPlace: r.oldLeftInPlace }, { rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false }, r.detail);
      assert.deepEqual(calls, [`apply ${path}@latest`, `apply ${path}@4`, 'verifyNew', 'verifyOld attested=true']);
      assert.equal(alerts.filter((a) => a.dedupKey.includes('/waiting-for-new-relay-login-stored/')).length, 1, 'one reminder in 1.5 h');
      const history = JSON.stringify((await h.fetchHistory()).events);
      assert.ok(!history.includes('hunter2-pasted'), 'the rejected update with a password reached the history');
    });
  });

  it('smtp-relay: three stores with nothing usable stop the class with the old login left in place, and alert', async () => {
    const alerts: AlertRequest[] = [];
    const calls: string[] = [];
    await ts.withStubWorker(relayStubs(alerts, calls, [false, false, false]), async (tq) => {
      const h = await startRelay(tq);
      for (let i = 0; i < 3; i++) {
        await waitApplied(h, i);
        await h.executeUpdate('relayPasswordStored', { args: [{ who: 'Dana', kvPath: relayPlan.kvPath!, oldRevoked: false }] });
      }
      const r = (await h.result()) as RotateResult;
      assert.deepEqual({ rotated: r.rotated, newVerified: r.newVerified, oldLeftInPlace: r.oldLeftInPlace }, { rotated: false, newVerified: false, oldLeftInPlace: true }, r.detail);
      assert.match(r.detail, /no usable new relay login after 3 tries/);
      assert.ok(!calls.includes('verifyNew'));
      assert.equal(alerts.find((a) => a.errorType === 'VerificationFailed')?.severity, 'critical');
    });
  });
});
