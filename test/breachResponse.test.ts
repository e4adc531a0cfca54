// breachResponse's waits and responders on Temporal's time-skipping test server: an unanswered
// acknowledgement climbs the on-call levels (the last one paged); malformed, premature and
// secret-bearing updates are refused by their validators and the incident goes on; the GDPR 72 h
// clock warns at 24 h and 60 h and pages at 72 h while the notices are not sent, and stays quiet
// once they are. Activities are typed stubs with the real names (the real ones run in
// test/breachTraining.test.ts on the local stack).
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { AlertRequest } from '../activities/notify/notify';
import type { IncidentActivities } from '../activities/emergency/incident';
import type { BreachProgress, BreachResult, NoticePreview } from '../common/incident';
import { acknowledge, addFinding, approveContainment, approveNotice, closeIncident, note } from '../workflows/emergency/breachResponse';
import { timeSkipping, type Stubs, type TimeSkipping } from './helpers/timeSkipping';

const HOUR = 3600_000;

/** Stub incident activities recording alerts and sent notices. */
function incidentStubs(alerts: AlertRequest[], sent: NoticePreview[]): Stubs {
  const previews: NoticePreview[] = [
    { tenantId: 'acme', to: 'privacy@acme.test', subject: 'Notice of Data Breach', text: 'What Happened ...' },
    { tenantId: 'globex', to: 'dpo@globex.test', subject: 'Notice of Data Breach', text: 'What Happened ...' },
  ];
  const stubs: Partial<IncidentActivities> & Stubs = {
    async recordIncident(req) {
      return { key: `incidents/${req.incidentId}/record.json` };
    },
    async assessExposure() {
      return { vault: 'http://127.0.0.1:8200: unsealed, active', tenants: [{ id: 'acme', name: 'Acme', secretPaths: 2 }] };
    },
    async prepareTenantNotices() {
      return { templateVersion: 1, templateSha256: 'ab'.repeat(32), previewDigest: '0123456789abcdef', previews };
    },
    async sendTenantNotice(req) {
      sent.push(req.notice);
      return { tenantId: req.notice.tenantId, to: req.notice.to, messageId: `<${req.notice.tenantId}@t>`, sentAt: new Date().toISOString(), attempt: 1, reused: false };
    },
    async sendAlert(req) {
      alerts.push(req);
      return { sent: true, channels: [], dedupRecord: 'written' as const };
    },
  };
  return stubs;
}

describe('breachResponse: escalation, validators and the 72 h clock (time-skipping test server)', function () {
  this.timeout(180_000);
  let ts: TimeSkipping;
  let n = 0;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => ts?.teardown());

  const start = (tq: string, input: Record<string, unknown>) =>
    ts.env.client.workflow.start('breachResponse', { taskQueue: tq, workflowId: `breach-${++n}-${Date.now()}`, args: [{ credentialClasses: [], declaredBy: 'alice', severity: 'sev1', ...input } as never] });
  const waitForStep = async (h: WorkflowHandle, step: string) => {
    for (let i = 0; i < 300; i++) {
      const p = await h.query<BreachProgress>('progress');
      if (p.step === step) return p;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`never reached ${step}`);
  };
  const refusal = (re: RegExp) => (e: unknown) => e instanceof WorkflowUpdateFailedError && re.test(String((e.cause as Error | undefined)?.message ?? e.message));

  it('an unanswered acknowledgement climbs the on-call levels and pages the last; bad updates are refused and the incident goes on', async () => {
    const alerts: AlertRequest[] = [];
    const sent: NoticePreview[] = [];
    await ts.withStubWorker(incidentStubs(alerts, sent), async (tq) => {
      const h = await start(tq, { escalateEveryMinutes: 15, proposeSeal: true });
      await waitForStep(h, 'awaitAcknowledgement');
      // Malformed and premature updates: refused, nothing changes.
      await assert.rejects(h.executeUpdate(acknowledge, { args: [{} as never] }), refusal(/field "who"/));
      await assert.rejects(h.executeUpdate(approveContainment, { args: [{ who: 'bob', approve: true, why: 'go' }] }), refusal(/not waiting for a containment decision/));
      await ts.env.sleep(40 * 60_000);
      const reminders = alerts.filter((a) => a.dedupKey.includes('/waiting-for-acknowledgement/'));
      assert.deepEqual(reminders.map((a) => [a.severity, a.details?.['on-call level']]), [
        ['warning', 'secondary on-call'],
        ['critical', 'incident commander'],
      ]);
      assert.equal(alerts.find((a) => a.dedupKey.endsWith('/declared'))?.severity, 'critical', 'the declaration pages the first level');
      await h.executeUpdate(acknowledge, { args: [{ who: 'bob', role: 'incident commander' }] });
      await waitForStep(h, 'awaitContainmentApproval');
      // A signal that cannot be parsed is ignored; a good one is on the timeline.
      await h.signal(addFinding, { finding: 42 } as never);
      await h.signal(addFinding, { who: 'carol', finding: 'the leaked AppRole secret-id was used from 203.0.113.7' });
      await h.signal(note, { who: 'carol', text: 'customer support briefed' });
      // A pasted secret, the declarer approving their own seal: refused.
      await assert.rejects(h.executeUpdate(approveContainment, { args: [{ who: 'bob', approve: true, why: 'token is hvs.CAESIJ1a2b3c4d5e6f7g8h9i0jKLMNOP' }] }), refusal(/looks like it contains a Vault\/OpenBao token/));
      await assert.rejects(h.executeUpdate(approveContainment, { args: [{ who: 'Alice', approve: true, seal: true, why: 'seal it' }] }), refusal(/two-person rule/));
      await h.executeUpdate(approveContainment, { args: [{ who: 'bob', approve: true, seal: false, why: 'revoke and rotate, no seal' }] });
      const p = await waitForStep(h, 'awaitNoticeApproval');
      await assert.rejects(h.executeUpdate(approveNotice, { args: [{ who: 'bob', approve: true, previewDigest: 'ffffffffffffffff', why: 'ok' }] }), refusal(/not the current preview/));
      await h.executeUpdate(approveNotice, { args: [{ who: 'dana', approve: true, previewDigest: p.notices!.previewDigest, why: 'read both' }] });
      await waitForStep(h, 'awaitIncidentClose');
      await assert.rejects(h.executeUpdate(closeIncident, { args: [{ who: 'bob', summary: 'x', actionItems: [{ what: 'rotate', owner: 'eve', due: 'soon' }] } as never] }), refusal(/actionItems\.0\.due/));
      await h.executeUpdate(closeIncident, { args: [{ who: 'bob', summary: 'AppRole secret-id leaked in a CI log', contributingFactors: ['CI printed env'], actionItems: [{ what: 'mask CI env', owner: 'eve', due: '2026-12-15' }] }] });
      const r = (await h.result()) as BreachResult;
      assert.equal(r.noticesSent, 2);
      assert.deepEqual(sent.map((s) => s.tenantId).sort(), ['acme', 'globex']);
      const whoWhat = r.timeline.filter((t) => t.who !== 'vault-dr').map((t) => `${t.who}:${t.what}`);
      assert.deepEqual(whoWhat, ['alice:declare', 'bob:acknowledge', 'carol:addFinding', 'carol:note', 'bob:approveContainment', 'dana:approveNotice', 'bob:closeIncident']);
      assert.equal(r.timeline.filter((t) => t.what === 'escalation').length, 2);
      assert.ok(!JSON.stringify(r).includes('hvs.'), 'the refused secret is nowhere in the result');
    });
  });

  it('the 72 h notice clock warns at 24 h and 60 h and pages at 72 h while notices are not sent', async () => {
    const alerts: AlertRequest[] = [];
    await ts.withStubWorker(incidentStubs(alerts, []), async (tq) => {
      // Reminders for the notice approval every 24 h: the clock's alerts are what is counted here.
      const h = await start(tq, { escalateEveryMinutes: 24 * 60 });
      await waitForStep(h, 'awaitAcknowledgement');
      await h.executeUpdate(acknowledge, { args: [{ who: 'bob' }] });
      await waitForStep(h, 'awaitContainmentApproval');
      await h.executeUpdate(approveContainment, { args: [{ who: 'bob', approve: true, why: 'rotate' }] });
      const p = await waitForStep(h, 'awaitNoticeApproval');
      const clock = () => alerts.filter((a) => a.dedupKey.includes('/notice-deadline/')).map((a) => `${a.dedupKey.split('/').pop()}:${a.severity}`);
      await ts.env.sleep(23 * HOUR);
      assert.deepEqual(clock(), []);
      await ts.env.sleep(2 * HOUR);
      assert.deepEqual(clock(), ['24h:warning']);
      await ts.env.sleep(36 * HOUR);
      assert.deepEqual(clock(), ['24h:warning', '60h:warning']);
      await ts.env.sleep(12 * HOUR);
      assert.deepEqual(clock(), ['24h:warning', '60h:warning', '72h:critical']);
      assert.match(alerts.find((a) => a.dedupKey.endsWith('/72h'))!.summary, /72 h notification deadline has PASSED/);
      await h.executeUpdate(approveNotice, { args: [{ who: 'dana', approve: true, previewDigest: p.notices!.previewDigest, why: 'late but right' }] });
      await waitForStep(h, 'awaitIncidentClose');
      await h.executeUpdate(closeIncident, { args: [{ who: 'bob', summary: 'notices were late' }] });
      const r = (await h.result()) as BreachResult;
      assert.equal(r.noticesSentWithinDeadline, false);
      assert.ok(r.timeline.some((t) => t.what === 'deadline' && /72 h deadline has passed/.test(t.detail)));
    });
  });

  it('notices sent in time silence the clock', async () => {
    const alerts: AlertRequest[] = [];
    await ts.withStubWorker(incidentStubs(alerts, []), async (tq) => {
      const h = await start(tq, {});
      await waitForStep(h, 'awaitAcknowledgement');
      await h.executeUpdate(acknowledge, { args: [{ who: 'bob' }] });
      await waitForStep(h, 'awaitContainmentApproval');
      await h.executeUpdate(approveContainment, { args: [{ who: 'bob', approve: true, why: 'rotate' }] });
      const p = await waitForStep(h, 'awaitNoticeApproval');
      await h.executeUpdate(approveNotice, { args: [{ who: 'dana', approve: true, previewDigest: p.notices!.previewDigest, why: 'ok' }] });
      await waitForStep(h, 'awaitIncidentClose');
      await ts.env.sleep(80 * HOUR);
      assert.deepEqual(alerts.filter((a) => a.dedupKey.includes('/notice-deadline/')), []);
      await h.executeUpdate(closeIncident, { args: [{ who: 'bob', summary: 'done in time' }] });
      assert.equal(((await h.result()) as BreachResult).noticesSentWithinDeadline, true);
    });
  });

  it('starts from the Web UI with {} (sev2, scope vault, awareness = start, notices due 72 h later)', async () => {
    await ts.withStubWorker(incidentStubs([], []), async (tq) => {
      const h = await ts.env.client.workflow.start('breachResponse', { taskQueue: tq, workflowId: `breach-empty-${Date.now()}`, args: [{}] });
      const p = await waitForStep(h, 'awaitAcknowledgement');
      assert.deepEqual([p.severity, p.scope, p.training], ['sev2', ['vault'], false]);
      assert.equal(Date.parse(p.noticeDeadline) - Date.parse(p.awareAt), 72 * HOUR);
      assert.match(p.waitingFor ?? '', /vaultdr incident ack/);
      await h.terminate('checked');
    });
  });

  it('bad input fails naming the field', async () => {
    await ts.withStubWorker(incidentStubs([], []), async (tq) => {
      const h = await start(tq, { severity: 'sev9' });
      const err = await h.result().catch((e: unknown) => e as Error & { cause?: { type?: string; message: string } });
      assert.equal((err as { cause?: { type?: string } }).cause?.type, 'InvalidInput');
      assert.match((err as { cause: { message: string } }).cause.message, /field "severity"/);
    });
  });
});
