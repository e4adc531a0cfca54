// Activities of the drDrill workflow (docs/runbooks/dr-drills.md) that are the drill's own: the
// preconditions (drillable target, no other drill or incident running), the wait for the
// scenario's alert in Alertmanager, the resolved findings to re-test, and the report (bucket,
// distribution list). The fault itself is the failover drill's (activities/ha/failover.ts).
import { Context } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { failure } from '../../common/errors';
import { SCENARIOS, type FindingRecord, type ScenarioId } from '../../common/drills';
import { AUTOMATED_SCENARIOS, DRILL_RUN_PREFIX, SCENARIO_TARGET, findingKindOf, type AlertObservation, type DrDrillReport } from '../../common/drillRun';
import type { Config } from '../../infra/config';
import type { MailTransport } from '../../infra/clients';
import { FindingStore } from '../../infra/store/findings';
import { getJsonObject, putJsonObject, putTextObject } from '../../infra/store/objects';
import { renderDrillReportHtml, renderDrillReportMarkdown } from '../../infra/drills/report';
import { keepHeartbeating } from '../heartbeat';

export interface DrillActivityDeps {
  cfg: Pick<Config, 'drills' | 'smtp' | 'alerts'>;
  s3: S3Client;
  bucket: string;
  mail: MailTransport;
  /** A Temporal client for the visibility query (another drill or an incident running?); closed after use. */
  temporal: () => Promise<Client>;
}

/** Workflow types that make a drill wait: another drill, or an incident being handled. */
export const CONFLICTING_TYPES = ['drDrill', 'breachResponse'] as const;

interface AmAlert {
  labels: Record<string, string>;
  startsAt: string;
  status?: { state?: string };
  receivers?: { name: string }[];
}

export const drillActivities = (deps: DrillActivityDeps) => {
  const findings = new FindingStore(deps.s3, deps.bucket);

  async function alerts(): Promise<AmAlert[]> {
    const res = await fetch(`${deps.cfg.drills.alertmanagerUrl.replace(/\/$/, '')}/api/v2/alerts?active=true&silenced=true&inhibited=true`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`Alertmanager ${deps.cfg.drills.alertmanagerUrl}: HTTP ${res.status}`);
    return (await res.json()) as AmAlert[];
  }

  return {
    /**
     * Refuses (DrillRefused, non-retryable) a scenario drDrill cannot run yet, a target the
     * configuration does not mark drillable, and a drill while another drill or an incident runs
     * on this installation's task queue (Temporal visibility).
     */
    async checkDrillPreconditions(req: { drillId: string; scenario: ScenarioId; taskQueue: string }): Promise<{ target: string }> {
      const target = SCENARIO_TARGET[req.scenario];
      if (!AUTOMATED_SCENARIOS.includes(req.scenario)) {
        throw failure('DrillRefused', `scenario ${req.scenario}: drDrill does not run this scenario yet (automated today: ${AUTOMATED_SCENARIOS.join(', ')}); run it by hand from docs/drills/scenarios.md`);
      }
      if (!deps.cfg.drills.drillableTargets.includes(target as never)) {
        throw failure('DrillRefused', `scenario ${req.scenario}: its target ${target} is not marked drillable (drills.drillableTargets: ${deps.cfg.drills.drillableTargets.join(', ') || 'none'}); a drill never touches a target the configuration does not allow`);
      }
      if (req.scenario === 'credential-compromise' && !deps.cfg.alerts.inbox.mailpitUrl) {
        throw failure('DrillRefused', `scenario ${req.scenario}: it observes the incident's declared e-mail in the alert inbox and alerts.inbox.mailpitUrl is not set (docs/runbooks/dr-drills.md)`);
      }
      const client = await deps.temporal();
      try {
        const types = CONFLICTING_TYPES.map((t) => `'${t}'`).join(', ');
        const query = `ExecutionStatus = 'Running' AND WorkflowType IN (${types}) AND TaskQueue = '${req.taskQueue.replace(/'/g, '')}'`;
        const running: string[] = [];
        for await (const w of client.workflow.list({ query })) {
          if (w.workflowId !== req.drillId) running.push(`${w.type} ${w.workflowId}`);
          if (running.length >= 5) break;
        }
        if (running.length) throw failure('DrillRefused', `another drill or an incident is running: ${running.join(', ')}; one drill at a time, and never during an incident`);
      } finally {
        await client.connection.close().catch(() => undefined);
      }
      return { target };
    },

    /**
     * Polls Alertmanager's API until `alertname` fires with startsAt at or after the fault (less
     * 5 s of clock skew), or `untilIso` passes. Not seeing it is a result (a finding), not an error.
     */
    async awaitDrillAlert(req: { alertname: string; sinceIso: string; untilIso: string }): Promise<AlertObservation> {
      const since = Date.parse(req.sinceIso) - 5000;
      const until = Date.parse(req.untilIso);
      const source = `${deps.cfg.drills.alertmanagerUrl.replace(/\/$/, '')}/api/v2/alerts`;
      const others = new Set<string>();
      let last = 'not asked yet';
      const stop = keepHeartbeating(() => ({ waitingFor: req.alertname, last }), 5000);
      try {
        for (;;) {
          try {
            const all = await alerts();
            last = `${all.length} active alert(s)`;
            for (const a of all) if (a.labels.alertname && a.labels.alertname !== req.alertname && Date.parse(a.startsAt) >= since) others.add(a.labels.alertname);
            const hit = all.filter((a) => a.labels.alertname === req.alertname && Date.parse(a.startsAt) >= since).sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt))[0];
            if (hit) {
              return { observed: true, alertname: req.alertname, startsAt: new Date(Date.parse(hit.startsAt)).toISOString(), seenAt: new Date().toISOString(), receivers: (hit.receivers ?? []).map((r) => r.name), labels: hit.labels, source, others: [...others].sort() };
            }
          } catch (err) {
            // Alertmanager down is itself worth the report; keep looking until the window ends.
            last = (err as Error).message;
            Context.current().log.warn('Alertmanager not readable', { error: last });
          }
          if (Date.now() >= until) return { observed: false, alertname: req.alertname, receivers: [], source: `${source} (last: ${last})`, others: [...others].sort() };
          await new Promise((r) => setTimeout(r, Math.min(2000, Math.max(0, until - Date.now()))));
        }
      } finally {
        stop();
      }
    },

    /** Resolved findings of the scenario that no drill has re-tested yet. */
    async listFindingsToRetest(req: { scenario: ScenarioId }): Promise<Pick<FindingRecord, 'findingId' | 'title' | 'kind'>[]> {
      return (await findings.list())
        .filter((f) => f.scenario === req.scenario && f.status === 'resolved' && !f.retestedInDrill)
        .map((f) => {
          const kind = findingKindOf(f);
          return { findingId: f.findingId, title: f.title, ...(kind ? { kind } : {}) };
        });
    },

    /** The report as JSON, Markdown and HTML under drills/runs/<drillId>/, and the re-tested findings marked with this drill. */
    async publishDrDrillReport(req: { report: DrDrillReport }): Promise<{ json: string; markdown: string; html: string }> {
      const r = req.report;
      if (!/^[A-Za-z0-9._-]{1,200}$/.test(r.drillId)) throw failure('InvalidInput', `drillId "${r.drillId.slice(0, 40)}" is not a plain name`);
      const base = `${DRILL_RUN_PREFIX}${r.drillId}/`;
      await putJsonObject(deps.s3, deps.bucket, `${base}report.json`, r);
      await putTextObject(deps.s3, deps.bucket, `${base}report.md`, renderDrillReportMarkdown(r), 'text/markdown; charset=utf-8');
      await putTextObject(deps.s3, deps.bucket, `${base}report.html`, renderDrillReportHtml(r), 'text/html; charset=utf-8');
      for (const t of r.retested) {
        const f = await findings.get(t.findingId);
        if (f && !f.retestedInDrill) await findings.put({ ...f, retestedInDrill: r.drillId, timeline: [...f.timeline, { at: new Date().toISOString(), by: 'vault-dr', what: `re-tested in drill ${r.drillId}: ${t.passed ? 'passed' : 'recurred'}` }] });
      }
      return { json: `${base}report.json`, markdown: `${base}report.md`, html: `${base}report.html` };
    },

    /** E-mails the report (Markdown text, HTML part) to the drill distribution list. */
    async mailDrillReport(req: { drillId: string; htmlKey: string; markdownKey: string }): Promise<{ messageId: string; to: string[] }> {
      const report = await getJsonObject<DrDrillReport>(deps.s3, deps.bucket, `${DRILL_RUN_PREFIX}${req.drillId}/report.json`);
      if (!report) throw failure('StoreUnreachable', `drill report ${req.drillId} not found in the bucket`);
      const to = deps.cfg.drills.distributionList;
      const s = SCENARIOS[report.scenario];
      const info = (await deps.mail.sendMail({
        from: deps.cfg.smtp.from,
        to,
        subject: `[vault-dr drill] ${report.scenario}: ${report.outcome}${report.findings.length ? `, ${report.findings.length} finding(s)` : ''} (${report.drillId})`,
        text: renderDrillReportMarkdown(report) + `\nStored at s3://${deps.bucket}/${req.markdownKey} and ${req.htmlKey}. Scenario: ${s.title}.\n`,
        html: renderDrillReportHtml(report),
        headers: { 'X-VaultDR-Drill': report.drillId },
      })) as { messageId: string };
      return { messageId: info.messageId, to };
    },

    /**
     * The cluster-loss drill's side of its child production restore (restoreVault): waits until the
     * restore shows its plan; with `approveAs` (automated mode) checks that the plan replaces the
     * empty cluster the drill just built and sends the real approveRestore update as that person
     * (the two-person rule holds: the restore was requested by the drill); then waits until the
     * snapshot is applied (the restore waits for the unseal). Returns the backup's cluster id for
     * the custodians' unseal. A restore that fails or ends meanwhile fails this (non-retryable).
     */
    async followDrillRestore(req: { restoreWorkflowId: string; approveAs?: { who: string; why: string; expectTargetClusterId: string }; untilIso: string }): Promise<{ backupId: string; backupClusterId: string; approvedBy?: string; approvedAt?: string; appliedAt: string }> {
      const until = Date.parse(req.untilIso);
      let stage = 'waiting for the restore plan';
      const stop = keepHeartbeating(() => ({ stage }), 5000);
      const client = await deps.temporal();
      try {
        const h = client.workflow.getHandle(req.restoreWorkflowId);
        let approvedAt: string | undefined;
        for (;;) {
          const desc = await h.describe();
          if (desc.status.name !== 'RUNNING') throw failure('DrillRestoreFailed', `the drill's restore ${req.restoreWorkflowId} ended (${desc.status.name}) before its snapshot was applied and unsealed`);
          const p = await h.query<{ step: string; completed: string[]; plan?: { backupId: string; backupClusterId: string; targetClusterId: string; older: boolean }; approval?: { who: string }; error?: string }>('progress');
          if (p.step === 'failed') throw failure('DrillRestoreFailed', `the drill's restore ${req.restoreWorkflowId} failed: ${p.error ?? 'see its history'}`);
          if (p.step === 'awaitApproval' && p.plan && req.approveAs && !approvedAt) {
            // Approve only the restore into the cluster the drill built a moment ago (its data is disposable).
            if (p.plan.targetClusterId !== req.approveAs.expectTargetClusterId) {
              throw failure('DrillRefused', `the drill's restore plans to replace cluster ${p.plan.targetClusterId}, not the empty cluster ${req.approveAs.expectTargetClusterId} the drill built: not approved`);
            }
            stage = 'approving';
            await h.executeUpdate('approveRestore', { args: [{ approve: true, who: req.approveAs.who, why: req.approveAs.why, allowOlderSnapshot: p.plan.older }] });
            approvedAt = new Date().toISOString();
            stage = 'waiting for the snapshot to be applied';
          }
          if (p.plan && (p.step === 'awaitTargetUnsealed' || p.completed.includes('restoreSnapshot'))) {
            return { backupId: p.plan.backupId, backupClusterId: p.plan.backupClusterId, ...(p.approval ? { approvedBy: p.approval.who } : {}), ...(approvedAt ? { approvedAt } : {}), appliedAt: new Date().toISOString() };
          }
          if (Date.now() > until) throw failure('DrillRestoreFailed', `the drill's restore ${req.restoreWorkflowId} is still at ${p.step} after the wait (${req.untilIso})${req.approveAs ? '' : ': nobody approved it (vaultdr restore approve)'}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      } finally {
        stop();
        await client.connection.close().catch(() => undefined);
      }
    },
  };
};

export type DrillActivities = ReturnType<typeof drillActivities>;
