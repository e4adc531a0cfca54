// The notification layer for workflow-originated alerts: e-mail (nodemailer), Slack incoming
// webhook and PagerDuty Events API v2, routed by severity (critical → PagerDuty + Slack + e-mail,
// warning → Slack + e-mail, info → e-mail). A channel that fails is reported in the outcome; the
// activity fails (and retries) only when no channel delivered.
// De-duplication: the same alert (dedupKey) is sent at most once per window, recorded in the
// backup bucket; when that record cannot be read (the store may be what is down) we send anyway.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as crypto from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { MailTransport } from '../infra/clients';
import { metrics } from '../infra/metrics';

import { ChannelSecretStore, ROUTES, sendPagerDuty, sendSlack, type ChannelName, type Severity } from '../infra/alertChannels';
export type { Severity } from '../infra/alertChannels';

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
  channels: { channel: ChannelName; ok: boolean; detail: string }[];
  suppressed?: string;
  dedupRecord: 'written' | 'unavailable';
}

interface DedupRecord {
  dedupKey: string;
  lastSentAt: string;
  lastWorkflowId: string;
  suppressedSince: number;
}

export const notifyActivities = (deps: { mail: MailTransport; s3: S3Client; bucket: string; from: string; to: string[]; dedupWindowMinutes: number; channelSecrets?: ChannelSecretStore }) => {
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
      if (!ROUTES[req.severity]) throw ApplicationFailure.create({ type: 'InvalidInput', message: `unknown alert severity "${String(req.severity)}"`, nonRetryable: true });
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
      const channels: AlertOutcome['channels'] = [];
      const { secrets, problems } = deps.channelSecrets ? await deps.channelSecrets.get() : { secrets: {}, problems: [] };
      const message = { severity: req.severity, summary: req.summary, dedupKey: req.dedupKey, source: req.workflowId, text, details: rows };
      for (const channel of ROUTES[req.severity]) {
        try {
          if (channel === 'email') {
            if (deps.to.length === 0) throw new Error('no alert recipients configured (smtp.alertTo / VAULTDR_ALERT_TO)');
            const info = await deps.mail.sendMail({
              from: deps.from,
              to: deps.to,
              subject: `[vault-dr ${req.severity.toUpperCase()}] ${req.summary}`,
              text,
              headers: { 'X-VaultDR-Dedup-Key': req.dedupKey, 'X-VaultDR-Workflow-Id': req.workflowId },
            });
            channels.push({ channel, ok: true, detail: `accepted by relay: ${info.messageId}` });
          } else if (channel === 'slack') {
            if (!secrets.slack) throw new Error(problems.find((p) => p.startsWith('slack')) ?? problems[0] ?? 'Slack not configured');
            channels.push({ channel, ok: true, detail: await sendSlack(secrets.slack, message) });
          } else {
            if (!secrets.pagerduty) throw new Error(problems.find((p) => p.startsWith('pagerduty')) ?? problems[0] ?? 'PagerDuty not configured');
            channels.push({ channel, ok: true, detail: await sendPagerDuty(secrets.pagerduty, message) });
          }
        } catch (err) {
          channels.push({ channel, ok: false, detail: (err as Error).message });
        }
        metrics().alertsSent.inc({ severity: req.severity, channel, outcome: channels[channels.length - 1]!.ok ? 'sent' : 'failed' });
      }
      // Not one channel delivered: fail so the activity retries (the workflow keeps its own error).
      if (!channels.some((c) => c.ok)) throw new Error(`alert not delivered on any channel: ${channels.map((c) => `${c.channel}: ${c.detail}`).join('; ')}`);
      const next: DedupRecord = { dedupKey: req.dedupKey, lastSentAt: now.toISOString(), lastWorkflowId: `${req.workflowId}/${req.runId}`, suppressedSince: 0 };
      let dedupRecord: AlertOutcome['dedupRecord'] = 'written';
      try {
        await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, ContentType: 'application/json', Body: JSON.stringify(next) }));
      } catch {
        dedupRecord = 'unavailable';
      }
      return { sent: true, channels, dedupRecord };
    },
  };
};

export type NotifyActivities = ReturnType<typeof notifyActivities>;
