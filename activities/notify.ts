// The notification layer for workflow-originated alerts. Today: e-mail through the configured
// relay (nodemailer). Slack and PagerDuty join with the monitoring issue behind the same call.
// De-duplication: the same alert (dedupKey) is sent at most once per window, recorded in the
// backup bucket; when that record cannot be read (the store may be what is down) we send anyway.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as crypto from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { MailTransport } from '../infra/clients';
import { metrics } from '../infra/metrics';

export type Severity = 'critical' | 'warning' | 'info';

export interface AlertRequest {
  severity: Severity;
  /** Same key = same problem; e.g. "backupVault/snapshotToStore/VaultSealed". */
  dedupKey: string;
  summary: string;
  workflowId: string;
  runId: string;
  failedStep?: string;
  errorType?: string;
  error?: string;
  /** Extra non-secret facts, shown as a table. */
  details?: Record<string, string>;
}

export interface AlertOutcome {
  sent: boolean;
  channels: { channel: 'email'; ok: boolean; detail: string }[];
  suppressed?: string;
  dedupRecord: 'written' | 'unavailable';
}

interface DedupRecord {
  dedupKey: string;
  lastSentAt: string;
  lastWorkflowId: string;
  suppressedSince: number;
}

export const notifyActivities = (deps: { mail: MailTransport; s3: S3Client; bucket: string; from: string; to: string[]; dedupWindowMinutes: number }) => {
  const recordKey = (dedupKey: string) => `alerts/dedup/${crypto.createHash('sha256').update(dedupKey).digest('hex').slice(0, 32)}.json`;

  async function readRecord(key: string): Promise<DedupRecord | undefined | 'unavailable'> {
    try {
      const res = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
      return JSON.parse(await res.Body!.transformToString()) as DedupRecord;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      return status === 404 ? undefined : 'unavailable';
    }
  }

  return {
    /** Sends an alert on every configured channel unless the same alert went out within the window. */
    async sendAlert(req: AlertRequest): Promise<AlertOutcome> {
      // Counted once per workflow run and step, before de-duplication (retries of this activity excluded).
      if (req.failedStep && Context.current().info.attempt === 1) {
        metrics().workflowFailures.inc({ workflow: req.dedupKey.split('/')[0] ?? 'unknown', step: req.failedStep, error_type: req.errorType ?? 'Error' });
      }
      const key = recordKey(req.dedupKey);
      const now = new Date();
      const record = await readRecord(key);
      if (record && record !== 'unavailable') {
        const age = now.getTime() - Date.parse(record.lastSentAt);
        // A retry of this very activity (same workflow run) must not send twice either.
        if (record.lastWorkflowId === `${req.workflowId}/${req.runId}` || age < deps.dedupWindowMinutes * 60_000) {
          await deps.s3
            .send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, ContentType: 'application/json', Body: JSON.stringify({ ...record, suppressedSince: record.suppressedSince + 1 }) }))
            .catch(() => undefined);
          metrics().alertsSent.inc({ severity: req.severity, channel: 'email', outcome: 'suppressed' });
          return { sent: false, channels: [], suppressed: `same alert sent at ${record.lastSentAt} by ${record.lastWorkflowId}`, dedupRecord: 'written' };
        }
      }
      if (deps.to.length === 0) throw new Error('no alert recipients configured (smtp.alertTo / VAULTDR_ALERT_TO)');
      const rows = {
        severity: req.severity,
        workflow: `${req.workflowId} (run ${req.runId})`,
        ...(req.failedStep ? { 'failed step': req.failedStep } : {}),
        ...(req.errorType ? { 'error type': req.errorType } : {}),
        ...(req.error ? { error: req.error } : {}),
        ...(record && record !== 'unavailable' && record.suppressedSince ? { 'repeats suppressed since last mail': String(record.suppressedSince) } : {}),
        ...req.details,
      };
      const text = `${req.summary}\n\n${Object.entries(rows).map(([k, v]) => `${k}: ${v}`).join('\n')}\n`;
      Context.current().heartbeat();
      const info = await deps.mail.sendMail({
        from: deps.from,
        to: deps.to,
        subject: `[vault-dr ${req.severity.toUpperCase()}] ${req.summary}`,
        text,
        headers: { 'X-VaultDR-Dedup-Key': req.dedupKey, 'X-VaultDR-Workflow-Id': req.workflowId },
      });
      const next: DedupRecord = { dedupKey: req.dedupKey, lastSentAt: now.toISOString(), lastWorkflowId: `${req.workflowId}/${req.runId}`, suppressedSince: 0 };
      let dedupRecord: AlertOutcome['dedupRecord'] = 'written';
      try {
        await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, ContentType: 'application/json', Body: JSON.stringify(next) }));
      } catch {
        dedupRecord = 'unavailable';
      }
      metrics().alertsSent.inc({ severity: req.severity, channel: 'email', outcome: 'sent' });
      return { sent: true, channels: [{ channel: 'email', ok: true, detail: `accepted by relay: ${info.messageId}` }], dedupRecord };
    },
  };
};

export type NotifyActivities = ReturnType<typeof notifyActivities>;
