// The notification layer for workflow-originated alerts: e-mail (nodemailer), Slack incoming
// webhook and PagerDuty Events API v2, routed by severity (critical → PagerDuty + Slack + e-mail,
// warning → Slack + e-mail, info → e-mail). A channel that fails is reported in the outcome; the
// activity fails (and retries) only when no channel delivered.
// De-duplication: the same alert (dedupKey) is sent at most once per window, recorded in the
// backup bucket; when that record cannot be read (the store may be what is down) we send anyway.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as crypto from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { MailTransport } from '../../infra/clients';
import { metrics } from '../../infra/metrics';

import { CHANNELS } from '../../common/alerts';
import { ChannelSecretStore, ROUTES, sendPagerDuty, sendSlack, subjectTag, type AlertMessage, type ChannelName, type ChannelSecrets, type Severity } from '../../infra/mail/alertChannels';
export type { ChannelName, Severity } from '../../infra/mail/alertChannels';

export interface AlertRequest {
  /** trigger (default): a problem; resolve: the problem with this dedupKey is over. */
  action?: 'trigger' | 'resolve';
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

  /** Sends one message on one channel; throws with the reason when it cannot. */
  async function deliverOn(channel: ChannelName, m: AlertMessage, secrets: ChannelSecrets, problems: string[]): Promise<string> {
    if (channel === 'email') {
      if (deps.to.length === 0) throw new Error('no alert recipients configured (smtp.alertTo / VAULTDR_ALERT_TO)');
      const info = await deps.mail.sendMail({
        from: deps.from,
        to: deps.to,
        subject: `[vault-dr ${subjectTag(m)}] ${m.summary}`,
        text: m.text,
        headers: { 'X-VaultDR-Dedup-Key': m.dedupKey, 'X-VaultDR-Workflow-Id': m.source },
      });
      return `accepted by relay: ${info.messageId}`;
    }
    if (channel === 'slack') {
      if (!secrets.slack) throw new Error(problems.find((p) => p.startsWith('slack')) ?? problems[0] ?? 'Slack not configured');
      return sendSlack(secrets.slack, m);
    }
    if (!secrets.pagerduty) throw new Error(problems.find((p) => p.startsWith('pagerduty')) ?? problems[0] ?? 'PagerDuty not configured');
    return sendPagerDuty(secrets.pagerduty, m);
  }

  const channelSecrets = async () => (deps.channelSecrets ? deps.channelSecrets.get() : { secrets: {} as ChannelSecrets, problems: [] as string[] });

  return {
    /**
     * Sends an alert (or, with action "resolve", its all-clear) on every channel its severity
     * routes to, unless the same alert went out within the window.
     */
    async sendAlert(req: AlertRequest): Promise<AlertOutcome> {
      const action = req.action ?? 'trigger';
      // Counted once per workflow run and step, before de-duplication (retries of this activity excluded).
      if (action === 'trigger' && req.failedStep && Context.current().info.attempt === 1) {
        const workflow = req.dedupKey.split('/')[0] ?? 'unknown';
        metrics().workflowFailures.inc({ workflow, step: req.failedStep, error_type: req.errorType ?? 'Error' });
        metrics().workflowRunsFailed.inc({ workflow });
      }
      if (!ROUTES[req.severity]) throw ApplicationFailure.create({ type: 'InvalidInput', message: `unknown alert severity "${String(req.severity)}"`, nonRetryable: true });
      const key = recordKey(action === 'resolve' ? `${req.dedupKey}#resolve` : req.dedupKey);
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
      const { secrets, problems } = await channelSecrets();
      const message: AlertMessage = { action, severity: req.severity, summary: req.summary, dedupKey: req.dedupKey, source: req.workflowId, text, details: rows };
      for (const channel of ROUTES[req.severity]) {
        try {
          channels.push({ channel, ok: true, detail: await deliverOn(channel, message, secrets, problems) });
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

    /**
     * One test message of one severity on one channel (alertDeliveryTest), whatever the routing
     * says. The token is in the summary so the receipt can be matched. A PagerDuty test incident
     * is resolved at once so nobody is left paged. Never throws for a channel problem: reports it.
     */
    async sendTestAlert(req: { severity: Severity; channel: ChannelName; token: string; workflowId: string }): Promise<{ ok: boolean; detail: string }> {
      if (!ROUTES[req.severity]) throw ApplicationFailure.create({ type: 'InvalidInput', message: `unknown alert severity "${String(req.severity)}"`, nonRetryable: true });
      if (!CHANNELS.includes(req.channel)) throw ApplicationFailure.create({ type: 'InvalidInput', message: `unknown alert channel "${String(req.channel)}"`, nonRetryable: true });
      const { secrets, problems } = await channelSecrets();
      const summary = `vault-dr alert delivery test ${req.token} (${req.severity} via ${req.channel})`;
      const details = { purpose: 'delivery test; no action needed beyond confirming receipt', token: req.token, workflow: req.workflowId };
      const m: AlertMessage = { action: 'trigger', severity: req.severity, summary, dedupKey: `alertDeliveryTest/${req.token}/${req.severity}`, source: req.workflowId, text: `${summary}\n\n${Object.entries(details).map(([k, v]) => `${k}: ${v}`).join('\n')}\n`, details };
      try {
        let detail = await deliverOn(req.channel, m, secrets, problems);
        if (req.channel === 'pagerduty') detail += `; ${await deliverOn(req.channel, { ...m, action: 'resolve' }, secrets, problems)}`;
        metrics().alertsSent.inc({ severity: req.severity, channel: req.channel, outcome: 'sent' });
        return { ok: true, detail };
      } catch (err) {
        metrics().alertsSent.inc({ severity: req.severity, channel: req.channel, outcome: 'failed' });
        return { ok: false, detail: (err as Error).message };
      }
    },
  };
};

export type NotifyActivities = ReturnType<typeof notifyActivities>;
