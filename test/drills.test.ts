// DR drills: the scenario catalogue against its generated page, and the remediation finding
// workflow on Temporal's time-skipping test server (reminders before the due date, overdue alerts
// that repeat and page, validated updates), plus its records in the real bucket as /metrics reads them.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Context } from '@temporalio/activity';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { DrDrillReport, DrDrillResult } from '../common/drillRun';
import type { DrDrillProgress } from '../workflows/drills/drDrill';
import { failureOf } from './helpers/inspect';
import type { AlertRequest } from '../activities/notify/notify';
import { SCENARIO_IDS, SCENARIOS, isOverdue, renderScenariosMarkdown, type FindingRecord } from '../common/drills';
import { buildS3Client } from '../infra/clients';
import { ConfigSchema } from '../infra/config';
import { SCENARIOS_DOC } from '../infra/drillDocs';
import { FindingStore } from '../infra/store/findings';
import type { FindingProgress } from '../workflows/drills/drillFinding';
import { ensureStack } from './helpers/stack';
import { timeSkipping, type TimeSkipping } from './helpers/timeSkipping';

const DAY = 86_400_000;

describe('DR drill scenarios (common/drills.ts)', () => {
  it('docs/drills/scenarios.md is the rendering of the catalogue (`npm run docs:drills`)', () => {
    assert.equal(fs.readFileSync(SCENARIOS_DOC, 'utf8'), renderScenariosMarkdown());
  });

  it('every scenario states hypothesis, steady state, fault, stop conditions, detection, recovery, checks and targets', () => {
    assert.deepEqual(Object.keys(SCENARIOS).sort(), [...SCENARIO_IDS].sort());
    for (const id of SCENARIO_IDS) {
      const s = SCENARIOS[id];
      assert.equal(s.id, id);
      for (const list of [s.steadyState, s.stopConditions, s.checks, s.prerequisites, s.runbooks]) assert.ok(list.length > 0, id);
      assert.ok(s.hypothesis.startsWith('When '), id);
      assert.ok(s.detection.withinSeconds > 0 && s.targets.rtoSeconds > 0 && s.targets.rpoSeconds >= 0, id);
      assert.match(s.schedule.cron, /^\d+ \d+ \d+ 1,4,7,10 \*$/, `${id}: quarterly`);
    }
    // Only the scenario whose prerequisites come first runs by default; the others are created paused.
    assert.deepEqual(SCENARIO_IDS.filter((id) => SCENARIOS[id].schedule.enabledByDefault), ['vault-node-failure']);
  });
});

describe('drills config: the credential-compromise target', () => {
  const parse = (drills: unknown) => ConfigSchema.safeParse({ vault: { tokenFile: 'unused' }, codec: { keysFile: 'unused' }, drills });
  it('defaults to the drill AppRole, accepts credential-class as drillable, and refuses a role vault-dr logs in with or a class the drill cannot prove', () => {
    const ok = parse({ drillableTargets: ['ha-vault', 'credential-class', 'mail-vps'] });
    assert.ok(ok.success);
    assert.deepEqual([ok.data.drills.credentialClass, ok.data.drills.credentialScope], ['approle-secret-id', 'vaultdr-drill']);
    for (const [drills, field, msg] of [
      [{ credentialScope: 'vaultdr-worker' }, 'drills.credentialScope', /must never be drilled/],
      [{ credentialScope: 'vaultdr-restore-validator' }, 'drills.credentialScope', /must never be drilled/],
      [{ credentialScope: 'role with spaces' }, 'drills.credentialScope', /AppRole role name/],
      [{ credentialClass: 'token-lease' }, 'drills.credentialClass', /approle-secret-id/],
      [{ drillableTargets: ['production-vault'] }, 'drills.drillableTargets.0', /ha-vault.*credential-class.*mail-vps/],
    ] as const) {
      const r = parse(drills);
      assert.ok(!r.success, JSON.stringify(drills));
      const issue = r.error.issues.find((i) => i.path.join('.') === field);
      assert.ok(issue && msg.test(issue.message), `${JSON.stringify(drills)}: ${JSON.stringify(r.error.issues)}`);
    }
  });
});

describe('drillFinding: remediation tracking (time-skipping test server)', function () {
  this.timeout(300_000);
  let ts: TimeSkipping;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => {
    await ts?.teardown();
  });

  it('reminds before the due date, alerts when overdue (paging from the third), and resolves with evidence through validated updates', async () => {
    const alerts: AlertRequest[] = [];
    const saved: FindingRecord[] = [];
    const stubs = {
      async sendAlert(req: AlertRequest) {
        alerts.push(req);
        return { delivered: ['email'], skipped: [], failed: [] } as never;
      },
      async saveFinding(req: { record: FindingRecord }) {
        saved.push(structuredClone(req.record));
        return { key: `drills/findings/${req.record.findingId}.json` };
      },
    };
    await ts.withStubWorker(stubs, async (taskQueue) => {
      const start = await ts.env.currentTimeMs();
      const due = new Date(start + 10 * DAY).toISOString().slice(0, 10);
      const h = await ts.env.client.workflow.start('drillFinding', {
        taskQueue,
        workflowId: `finding-${taskQueue}`,
        args: [{ drillId: 'drill-2026q4-vnf', scenario: 'vault-node-failure', title: 'HAProxy kept a dead node for 15 s', severity: 'high', dueDate: due, runbookSection: 'docs/runbooks/ha-failover.md' }],
      });
      // Bad payloads are refused by the validators, naming the field; the run goes on.
      await assert.rejects(h.executeUpdate('assign', { args: [{ owner: '', by: 'Alice' }] }), (e: Error) => e instanceof WorkflowUpdateFailedError && /field "owner"/.test(String(e.cause?.message)));
      await assert.rejects(h.executeUpdate('resolve', { args: [{ by: 'Alice' }] }), (e: Error) => e instanceof WorkflowUpdateFailedError && /field "evidence"/.test(String(e.cause?.message)));
      const assigned = (await h.executeUpdate('assign', { args: [{ owner: 'Bob', by: 'Alice' }] })) as FindingRecord;
      assert.equal(assigned.owner, 'Bob');

      // 7 and 1 days before the end of the due date: two reminders (info).
      const dueEnd = Date.parse(`${due}T23:59:59Z`);
      const sleepUntil = async (t: number) => ts.env.sleep(t - (await ts.env.currentTimeMs()));
      await sleepUntil(dueEnd - 6.5 * DAY);
      assert.deepEqual(alerts.filter((a) => /due in/.test(a.summary)).map((a) => a.severity), ['info']);
      await sleepUntil(dueEnd - 0.5 * DAY);
      assert.deepEqual(alerts.filter((a) => /due in/.test(a.summary)).map((a) => a.severity), ['info', 'info']);
      assert.equal(alerts.filter((a) => /overdue/.test(a.summary)).length, 0, 'not overdue before the end of its due date');

      // Overdue: the end of the due date, then every 7 days; the third pages.
      await sleepUntil(dueEnd + 15 * DAY);
      const overdue = alerts.filter((a) => /overdue/.test(a.summary));
      assert.deepEqual(overdue.map((a) => a.severity), ['warning', 'warning', 'critical']);
      assert.ok(overdue.every((a) => a.dedupKey === overdue[0]!.dedupKey), 'one problem, one dedup key');
      const p = (await h.query('progress')) as FindingProgress;
      assert.equal(p.overdueAlerts, 3);
      assert.ok(isOverdue(p.record!, await ts.env.currentTimeMs()));

      const resolved = (await h.executeUpdate('resolve', { args: [{ by: 'Bob', evidence: 'fastinter 1s in stack/ha/haproxy.ts, drill-2027q1 re-test' }] })) as FindingRecord;
      assert.equal(resolved.status, 'resolved');
      const result = (await h.result()) as FindingRecord;
      assert.equal(result.status, 'resolved');
      assert.equal(result.resolvedBy, 'Bob');
      assert.equal(alerts.at(-1)?.action, 'resolve', 'the overdue alert is cleared');
      assert.equal(alerts.at(-1)?.dedupKey, overdue[0]!.dedupKey);
      // Every change was recorded; the last record is the resolved one.
      assert.equal(saved.at(-1)?.status, 'resolved');
      assert.ok(saved.some((r) => r.owner === 'Bob' && r.status === 'open'));
      assert.deepEqual(
        result.timeline.map((e) => e.what.replace(/\d+/g, 'N')),
        ['opened from drill drill-NqN-vnf, due N-N-N', 'assigned to Bob', 'reminder: due in N day(s)', 'reminder: due in N day(s)', 'overdue alert N', 'overdue alert N', 'overdue alert N (paged)', 'resolved'],
      );
      // The history grows with reminders and updates, not with time: 26 days of waiting.
      const events = (await h.fetchHistory()).events ?? [];
      assert.ok(events.length < 150, `${events.length} history events`);
    });
  });

  it('starts from the Web UI with {} and refuses a malformed input naming the field', async () => {
    const saved: FindingRecord[] = [];
    const stubs = {
      async sendAlert() {
        return { delivered: [], skipped: [], failed: [] } as never;
      },
      async saveFinding(req: { record: FindingRecord }) {
        saved.push(structuredClone(req.record));
        return { key: 'k' };
      },
    };
    await ts.withStubWorker(stubs, async (taskQueue) => {
      const h = await ts.env.client.workflow.start('drillFinding', { taskQueue, workflowId: `finding-empty-${taskQueue}`, args: [{}] });
      await h.executeUpdate('note', { args: [{ by: 'Carol', text: 'found in the Q4 tabletop' }] });
      const p = (await h.query('progress')) as FindingProgress;
      assert.equal(p.record?.severity, 'medium');
      assert.equal(p.record?.scenario, 'vault-node-failure');
      // The due date counts from the run's start: the test server's clock may have skipped ahead
      // to a reminder since, so "now" here can be days later.
      const started = (await h.describe()).startTime;
      assert.equal(p.record?.dueDate, new Date(started.getTime() + 30 * DAY).toISOString().slice(0, 10));
      await h.terminate('test done');

      const bad = await ts.env.client.workflow.start('drillFinding', { taskQueue, workflowId: `finding-bad-${taskQueue}`, args: [{ severity: 'catastrophic', runbookSection: '../../etc/passwd' }] });
      await assert.rejects(bad.result(), (e: Error) => /invalid input: field "severity"/.test(String((e as { cause?: Error }).cause?.message)) && /field "runbookSection"/.test(String((e as { cause?: Error }).cause?.message)));
    });
  });
});

describe('drill findings in the bucket (real SeaweedFS)', function () {
  this.timeout(120_000);
  it('are listed as /metrics counts them: open, and overdue after the end of the due date', async () => {
    const cfg = await ensureStack();
    const store = new FindingStore(buildS3Client(cfg.s3), cfg.s3.bucket);
    const id = `test-${process.pid}-${Date.now().toString(36)}`;
    const base: FindingRecord = { findingId: id, workflowId: id, drillId: 'd', scenario: 'cluster-loss', title: 't', severity: 'low', dueDate: '2026-01-31', status: 'open', openedAt: '2026-01-01T00:00:00Z', timeline: [] };
    await store.put(base);
    await store.put({ ...base, findingId: `${id}-done`, status: 'resolved' });
    const mine = (await store.list()).filter((f) => f.findingId.startsWith(id));
    assert.deepEqual(mine.map((f) => f.findingId).sort(), [id, `${id}-done`]);
    assert.deepEqual(mine.filter((f) => isOverdue(f, Date.parse('2026-02-01T00:00:00Z'))).map((f) => f.findingId), [id]);
    assert.equal(isOverdue(base, Date.parse('2026-01-31T23:59:00Z')), false, 'due today is not overdue');
    assert.throws(() => store.key('../manifest'), /not a plain name/);
  });
});

describe('drDrill: assisted mode, abort and revert (time-skipping test server, stub activities)', function () {
  this.timeout(300_000);
  let ts: TimeSkipping;
  before(async () => {
    ts = await timeSkipping();
  });
  after(async () => {
    await ts?.teardown();
  });

  /** Stub activities of a vault-node-failure drill; `calls` records each activity name in order. */
  function drillStubs(calls: string[], over: { alert?: () => Promise<unknown> } = {}) {
    const reports: DrDrillReport[] = [];
    const alerts: AlertRequest[] = [];
    const rec =
      <T>(name: string, v: (req: never) => T | Promise<T>) =>
      async (req: never) => {
        calls.push(name);
        return v(req);
      };
    const stubs = {
      checkDrillPreconditions: rec('checkDrillPreconditions', () => ({ target: 'ha-vault' })),
      // f-old: opened before kinds existed (its kind comes from its title); the others match by kind whatever their title says.
      listFindingsToRetest: rec('listFindingsToRetest', () => [
        { findingId: 'f-old', title: 'vault-node-failure: the fault was not detected (VaultHaNodeDown)' },
        { findingId: 'f-kind-recurs', title: 'VaultHaNodeDown never reached Alertmanager (reworded)', kind: 'not-detected' },
        { findingId: 'f-kind-fixed', title: 'failover too slow (reworded)', kind: 'rto-exceeded' },
      ]),
      checkClusterHealthy: rec('checkClusterHealthy', () => ({ healthy: true, problems: [], nodes: [] })),
      // The newest verified backup, 1 h old by the workflow's clock (the test server's is years ahead): the steady state's backup probe holds.
      selectBackup: rec('selectBackup', () => ({ backupId: 'b-1', createdAt: new Date(Context.current().info.scheduledTimestampMs - 3600_000).toISOString(), raftIndex: 1, objectBytes: 1, canary: { path: 'secret/data/canary', marker: 'c' } })),
      runFailoverRound: rec('runFailoverRound', () => ({ injected: { target: 'vault', node: 'bao-2', fault: 'kill-leader', at: Date.now() }, gapMs: 2500, writesAcked: 40, writesFailed: 3, lost: 0, clientErrors: [] })),
      awaitDrillAlert: rec('awaitDrillAlert', () => (over.alert ? over.alert() : { observed: false, alertname: 'VaultHaNodeDown', receivers: [], source: 'stub', others: [] })),
      healFault: rec('healFault', () => ({ healMs: 1200 })),
      healLeftoverFault: rec('healLeftoverFault', () => ({})),
      publishDrDrillReport: rec('publishDrDrillReport', (req: { report: DrDrillReport }) => {
        reports.push(req.report);
        return { json: 'j', markdown: 'm', html: 'h' };
      }),
      mailDrillReport: rec('mailDrillReport', () => ({ messageId: 'x', to: ['dr-drills@localhost'] })),
      saveFinding: async () => ({ key: 'k' }),
      sendAlert: async (req: AlertRequest) => {
        alerts.push(req);
        return { delivered: ['email'], skipped: [], failed: [] };
      },
    };
    return { stubs: stubs as never, reports, alerts };
  }

  async function waitFor(h: WorkflowHandle, stepName: string): Promise<DrDrillProgress> {
    for (let i = 0; ; i++) {
      const p = (await h.query('progress')) as DrDrillProgress;
      if (p.awaitingConfirmation === stepName) return p;
      if (i > 200) throw new Error(`not waiting for ${stepName}: ${JSON.stringify(p)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // First in this environment: run after the two below, its 30-minute wait never skipped (the test
  // server kept time locked; likely the activity the abort test cancels, not bisected further).
  it('a step left unconfirmed past confirmTimeoutMinutes ends the drill before anything is injected', async () => {
    const calls: string[] = [];
    const { stubs, alerts } = drillStubs(calls);
    await ts.withStubWorker(stubs, async (taskQueue) => {
      const h = await ts.env.client.workflow.start('drDrill', { taskQueue, workflowId: `drdrill-timeout-${taskQueue}`, args: [{ mode: 'assisted', confirmTimeoutMinutes: 30 }] });
      const f = await failureOf(h.result());
      assert.equal(f.type, 'ApprovalTimeout');
      assert.ok(!calls.includes('runFailoverRound') && !calls.includes('healFault'), calls.join(', '));
      assert.ok(alerts.some((a) => /waiting for confirmation of checkSteadyState \(reminder 1\)/.test(a.summary)), 'reminded the facilitator');
    });
  });

  it('the facilitator confirms each step (validated), a recurring finding is opened and its resolved predecessor reported as recurred', async () => {
    const calls: string[] = [];
    const { stubs, reports } = drillStubs(calls);
    await ts.withStubWorker(stubs, async (taskQueue) => {
      const h = await ts.env.client.workflow.start('drDrill', { taskQueue, workflowId: `drdrill-assisted-${taskQueue}`, args: [{ mode: 'assisted', facilitator: 'Alice' }] });
      for (const s of ['checkSteadyState', 'injectFault', 'awaitDetection', 'verifyRecovery', 'writeReport'] as const) {
        await waitFor(h, s);
        await assert.rejects(h.executeUpdate('confirmStep', { args: [{ step: 'checkDrillPreconditions', by: 'Alice' }] }), WorkflowUpdateFailedError);
        await assert.rejects(h.executeUpdate('confirmStep', { args: [{ step: s, by: '' }] }), WorkflowUpdateFailedError);
        assert.deepEqual(await h.executeUpdate('confirmStep', { args: [{ step: s, by: 'Alice' }] }), { confirmed: s });
      }
      const r = (await h.result()) as DrDrillResult;
      assert.equal(r.outcome, 'findings');
      assert.deepEqual(r.findings, [`${h.workflowId}-finding-1`]);
      assert.equal(r.rtoMs, 2500);
      // revertFault ran without waiting for anyone, before verifyRecovery.
      assert.deepEqual(calls, ['checkDrillPreconditions', 'listFindingsToRetest', 'checkClusterHealthy', 'selectBackup', 'runFailoverRound', 'awaitDrillAlert', 'healFault', 'checkClusterHealthy', 'publishDrDrillReport', 'mailDrillReport']);
      const rep = reports[0]!;
      assert.equal(rep.findings[0]!.title, 'vault-node-failure: the fault was not detected (VaultHaNodeDown)');
      assert.equal(rep.findings[0]!.severity, 'high');
      assert.equal(rep.findings[0]!.kind, 'not-detected');
      assert.deepEqual(rep.retested, [
        { findingId: 'f-old', title: 'vault-node-failure: the fault was not detected (VaultHaNodeDown)', passed: false },
        { findingId: 'f-kind-recurs', title: 'VaultHaNodeDown never reached Alertmanager (reworded)', kind: 'not-detected', passed: false },
        { findingId: 'f-kind-fixed', title: 'failover too slow (reworded)', kind: 'rto-exceeded', passed: true },
      ]);
      assert.equal(rep.timeline.filter((e) => e.kind === 'confirm').length, 5);
      const child = ts.env.client.workflow.getHandle(r.findings[0]!);
      assert.equal(((await child.query('progress')) as FindingProgress).record?.severity, 'high');
      await child.terminate('test over');
    });
  });

  it('an abort in the middle of the detection wait reverts the fault, writes an aborted report and warns', async () => {
    const calls: string[] = [];
    // The alert wait hangs (as if nothing fired): the abort must interrupt it.
    const { stubs, reports, alerts } = drillStubs(calls, { alert: () => new Promise((r) => setTimeout(() => r({ observed: false, alertname: 'VaultHaNodeDown', receivers: [], source: 'stub', others: [] }), 5000)) });
    await ts.withStubWorker(stubs, async (taskQueue) => {
      const h = await ts.env.client.workflow.start('drDrill', { taskQueue, workflowId: `drdrill-abort-${taskQueue}`, args: [{ mode: 'assisted' }] });
      for (const s of ['checkSteadyState', 'injectFault', 'awaitDetection'] as const) {
        await waitFor(h, s);
        await h.executeUpdate('confirmStep', { args: [{ step: s, by: 'Bob' }] });
      }
      while (!calls.includes('awaitDrillAlert')) await new Promise((r) => setTimeout(r, 50));
      await h.executeUpdate('abort', { args: [{ by: 'Bob', reason: 'a real page came in' }] });
      await assert.rejects(h.executeUpdate('abort', { args: [{ by: 'Bob', reason: 'twice' }] }), WorkflowUpdateFailedError);
      const f = await failureOf(h.result());
      assert.equal(f.type, 'DrillAborted');
      assert.match(f.message, /aborted by Bob: a real page came in/);
      assert.ok(calls.includes('healFault'), `the fault is reverted: ${calls.join(', ')}`);
      assert.equal(calls.filter((c) => c === 'checkClusterHealthy').length, 1, 'no verifyRecovery after an abort');
      assert.equal(reports.at(-1)?.outcome, 'aborted');
      assert.match(reports.at(-1)!.error!, /^awaitDetection: aborted by Bob/);
      const a = alerts.find((x) => x.dedupKey.startsWith('drDrill/'))!;
      assert.equal(a.severity, 'warning');
    });
  });

  it('credential-compromise: an abort during detection still closes the training incident (revertFault), writes an aborted report, and never probes for recovery', async () => {
    const calls: string[] = [];
    const reports: DrDrillReport[] = [];
    const rec =
      <T>(name: string, v: (req: never) => T | Promise<T>) =>
      async (req: never) => {
        calls.push(name);
        return v(req);
      };
    const later = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms));
    const closed: { workflowId: string }[] = [];
    const stubs = {
      checkDrillPreconditions: rec('checkDrillPreconditions', () => ({ target: 'credential-class' })),
      listFindingsToRetest: rec('listFindingsToRetest', () => []),
      checkDrillCredential: rec('checkDrillCredential', () => ({ credentialClass: 'approle-secret-id', scope: 'vaultdr-drill', kvPath: 'secret/data/vault-dr/credentials/approle-secret-id/vaultdr-drill', version: 3, works: true, detail: 'works' })),
      respondToTrainingIncident: rec('respondToTrainingIncident', () => later(5000, { stage: 'failed', step: 'failed', tenants: 0, noticesSent: 0, noticesTraining: false, actions: [] })),
      awaitDeclaredMail: rec('awaitDeclaredMail', () => later(5000, { observed: false, alertname: 'breachResponse declared (training)', receivers: [], source: 'stub', others: [] })),
      verifyDrillCredential: rec('verifyDrillCredential', () => ({ versionAfter: 4, newWorks: true, oldRefused: true, detail: 'stub' })),
      closeTrainingIncident: rec('closeTrainingIncident', (req: { workflowId: string }) => {
        closed.push(req);
        return { how: 'cancelled', detail: 'stub' };
      }),
      publishDrDrillReport: rec('publishDrDrillReport', (req: { report: DrDrillReport }) => {
        reports.push(req.report);
        return { json: 'j', markdown: 'm', html: 'h' };
      }),
      mailDrillReport: rec('mailDrillReport', () => ({ messageId: 'x', to: ['dr-drills@localhost'] })),
      // The training incident's own activities (its child runs on the same stub worker).
      recordIncident: async () => ({ key: 'k' }),
      sendAlert: async () => ({ delivered: ['email'], skipped: [], failed: [] }),
      saveFinding: async () => ({ key: 'k' }),
    };
    await ts.withStubWorker(stubs as never, async (taskQueue) => {
      const h = await ts.env.client.workflow.start('drDrill', { taskQueue, workflowId: `drdrill-cred-abort-${taskQueue}`, args: [{ scenario: 'credential-compromise' }] });
      while (!calls.includes('awaitDeclaredMail')) await new Promise((r) => setTimeout(r, 50));
      await h.executeUpdate('abort', { args: [{ by: 'Bob', reason: 'a real incident was declared' }] });
      const f = await failureOf(h.result());
      assert.equal(f.type, 'DrillAborted');
      assert.deepEqual(closed.map((c) => c.workflowId), [`${h.workflowId}-incident`], 'the training incident is closed by the revert');
      assert.ok(!calls.includes('verifyDrillCredential'), calls.join(', '));
      const p = (await h.query('progress')) as DrDrillProgress;
      assert.ok(p.completed.includes('revertFault') && !p.completed.includes('verifyRecovery'), JSON.stringify(p.completed));
      assert.equal(reports.at(-1)?.outcome, 'aborted');
      assert.equal(reports.at(-1)?.credential?.versionBefore, 3);
    });
  });

});
