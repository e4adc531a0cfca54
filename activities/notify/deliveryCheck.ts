// alertDeliveryTest's receipt check for test and local stacks: looks for the test token in what
// Mailpit received (its search API) and in what the Slack/PagerDuty stand-in accepted
// (GET /api/received). Production confirms by a person's `ack` signal instead.
import { Context } from '@temporalio/activity';
import type { ChannelName, Severity } from '../../common/alerts';
import type { Config } from '../../infra/config';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

export const deliveryCheckActivities = (deps: { inbox: Config['alerts']['inbox'] }) => ({
  async confirmTestAlert(req: { channel: ChannelName; severity: Severity; token: string; timeoutSeconds: number }): Promise<{ confirmed: boolean; detail: string }> {
    const marker = `${req.token} (${req.severity} via ${req.channel})`;
    const base = req.channel === 'email' ? deps.inbox.mailpitUrl : deps.inbox.saasSinkUrl;
    if (!base) return { confirmed: false, detail: `alerts.inbox.${req.channel === 'email' ? 'mailpitUrl' : 'saasSinkUrl'} is not configured; confirm with "ack" instead` };
    const look = async (): Promise<string | undefined> => {
      if (req.channel === 'email') {
        const r = await getJson<{ messages: { ID: string; Subject: string }[] }>(`${base}/api/v1/search?query=${encodeURIComponent(req.token)}`);
        const m = r.messages.find((x) => x.Subject.includes(marker));
        return m && `found in Mailpit (message ${m.ID})`;
      }
      const received = await getJson<{ service: string; at: number; body: Record<string, unknown> }[]>(`${base}/api/received`);
      const hit = received.find((x) => x.service === req.channel && JSON.stringify(x.body).includes(marker));
      return hit && `found at the ${req.channel} receiver (accepted ${new Date(hit.at).toISOString()})`;
    };
    const deadline = Date.now() + req.timeoutSeconds * 1000;
    let lastError = '';
    for (;;) {
      Context.current().heartbeat();
      try {
        const found = await look();
        if (found) return { confirmed: true, detail: found };
      } catch (err) {
        lastError = `; last error: ${(err as Error).message}`;
      }
      if (Date.now() > deadline) return { confirmed: false, detail: `not received within ${req.timeoutSeconds} s${lastError}` };
      await sleep(1000);
    }
  },
});

export type DeliveryCheckActivities = ReturnType<typeof deliveryCheckActivities>;
