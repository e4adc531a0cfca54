// Slack and PagerDuty for workflow-originated alerts, speaking their documented APIs: a Slack
// incoming webhook (POST {"text": ...}, answer "ok") and the PagerDuty Events API v2
// (POST {routing_key, event_action, dedup_key, payload{summary, source, severity, ...}}, 202).
// Webhook URLs and routing keys are secrets: they are read from Vault (KV v2) at the point of use
// and cached in memory, so an alert about a sealed Vault can still go out.
import type { BaoClient } from '../vault/bao';

import type { Severity } from '../../common/alerts';
export { ROUTES, type ChannelName, type Severity } from '../../common/alerts';

export interface ChannelSecrets {
  slack?: { webhookUrl: string };
  pagerduty?: { routingKey: string; eventsUrl: string };
}

const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** Reads channel secrets from KV v2 (`<mount>/data/<path>/slack`, `.../pagerduty`); absent = not configured. */
export class ChannelSecretStore {
  private cache?: { at: number; value: ChannelSecrets };
  constructor(
    private readonly bao: BaoClient,
    private readonly mount: string,
    private readonly path: string,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  async get(): Promise<{ secrets: ChannelSecrets; problems: string[] }> {
    if (this.cache && Date.now() - this.cache.at < this.ttlMs) return { secrets: this.cache.value, problems: [] };
    const problems: string[] = [];
    const read = async (name: string): Promise<Record<string, string> | undefined> => {
      try {
        const body = (await this.bao.read(`${this.mount}/data/${this.path}/${name}`)) as { data?: { data?: Record<string, string> } };
        return body.data?.data;
      } catch (err) {
        const status = (err as { status?: number }).status;
        if (status === 404) return undefined;
        throw err;
      }
    };
    try {
      const slack = await read('slack');
      const pd = await read('pagerduty');
      const value: ChannelSecrets = {};
      if (slack) {
        if (!/^https?:\/\//.test(slack.webhook_url ?? '')) problems.push(`slack: ${this.mount}/${this.path}/slack has no valid webhook_url`);
        else value.slack = { webhookUrl: slack.webhook_url! };
      }
      if (pd) {
        if (!pd.routing_key) problems.push(`pagerduty: ${this.mount}/${this.path}/pagerduty has no routing_key`);
        else value.pagerduty = { routingKey: pd.routing_key, eventsUrl: pd.events_url || PAGERDUTY_EVENTS_URL };
      }
      this.cache = { at: Date.now(), value };
      return { secrets: value, problems };
    } catch (err) {
      // Vault sealed or unreachable: use what we had, and say so.
      if (this.cache) return { secrets: this.cache.value, problems: [`channel secrets from cache (${(err as Error).message})`] };
      return { secrets: {}, problems: [`cannot read channel secrets from Vault: ${(err as Error).message}`] };
    }
  }
}

export interface AlertMessage {
  /** trigger: a problem starts; resolve: it is over (PagerDuty closes the incident with the same dedup key). */
  action: 'trigger' | 'resolve';
  severity: Severity;
  summary: string;
  dedupKey: string;
  source: string;
  text: string;
  details: Record<string, string>;
}

async function post(url: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: (await res.text()).slice(0, 300) };
}

/** Never includes the URL or key in what it returns: they are secrets. */
export async function sendSlack(secrets: NonNullable<ChannelSecrets['slack']>, m: AlertMessage): Promise<string> {
  const icon = m.action === 'resolve' ? ':white_check_mark:' : m.severity === 'critical' ? ':rotating_light:' : m.severity === 'warning' ? ':warning:' : ':information_source:';
  const r = await post(secrets.webhookUrl, { text: `${icon} *[vault-dr ${subjectTag(m)}]* ${m.summary}\n\`\`\`${m.text}\`\`\`` });
  if (r.status !== 200) throw new Error(`Slack webhook answered HTTP ${r.status}: ${r.text}`);
  return 'accepted by Slack webhook';
}

export async function sendPagerDuty(secrets: NonNullable<ChannelSecrets['pagerduty']>, m: AlertMessage): Promise<string> {
  const dedup_key = m.dedupKey.slice(0, 255);
  const r = await post(
    secrets.eventsUrl,
    m.action === 'resolve'
      ? { routing_key: secrets.routingKey, event_action: 'resolve', dedup_key }
      : { routing_key: secrets.routingKey, event_action: 'trigger', dedup_key, payload: { summary: m.summary.slice(0, 1024), source: m.source, severity: m.severity, component: 'vault-dr', custom_details: m.details } },
  );
  if (r.status !== 202) throw new Error(`PagerDuty Events API answered HTTP ${r.status}: ${r.text}`);
  return `${m.action} accepted by PagerDuty Events API v2`;
}

/** "CRITICAL", "WARNING", "INFO", or "RESOLVED": the tag in e-mail subjects and Slack messages. */
export function subjectTag(m: Pick<AlertMessage, 'action' | 'severity'>): string {
  return m.action === 'resolve' ? 'RESOLVED' : m.severity.toUpperCase();
}
