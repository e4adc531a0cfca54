// A local stand-in for the two paid SaaS endpoints, checking the request shapes their public docs
// define: Slack incoming webhooks (POST JSON with a non-empty "text", or attachments/blocks; answers
// 200 "ok") and the PagerDuty Events API v2 (POST /v2/enqueue with routing_key, event_action,
// payload.summary/source/severity; answers 202 {"status":"success"}). A request of the wrong shape
// gets their 400. What was accepted can be read back at GET /api/received, so the local stack's
// Alertmanager, the app's notification layer and alertDeliveryTest can be checked end to end.
// Run by the local stack as a component (`node lib/stack/saasSink.js 127.0.0.1:8099`) and in tests.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  service: 'slack' | 'pagerduty';
  /** Milliseconds since the epoch when accepted. */
  at: number;
  body: Record<string, any>;
}

function validSlack(body: Record<string, any>): boolean {
  // A message needs text, or attachments/blocks (what Alertmanager sends).
  const hasText = typeof body.text === 'string' && body.text.length > 0;
  const hasRich = (Array.isArray(body.attachments) && body.attachments.length > 0) || (Array.isArray(body.blocks) && body.blocks.length > 0);
  return hasText || hasRich;
}

function pagerDutyErrors(body: Record<string, any>): string[] {
  const p = body.payload as Record<string, unknown> | undefined;
  const errors: string[] = [];
  if (typeof body.routing_key !== 'string' || body.routing_key.length !== 32) errors.push('routing_key must be 32 characters');
  if (!['trigger', 'acknowledge', 'resolve'].includes(body.event_action)) errors.push('invalid event_action');
  if (body.dedup_key !== undefined && (typeof body.dedup_key !== 'string' || body.dedup_key.length > 255)) errors.push('invalid dedup_key');
  if (body.event_action !== 'trigger' && typeof body.dedup_key !== 'string') errors.push('dedup_key required for acknowledge and resolve');
  if (body.event_action === 'trigger') {
    if (!p || typeof p.summary !== 'string' || p.summary.length === 0 || p.summary.length > 1024) errors.push('payload.summary required (1..1024)');
    if (!p || typeof p.source !== 'string' || p.source.length === 0) errors.push('payload.source required');
    if (!p || !['critical', 'error', 'warning', 'info'].includes(p.severity as string)) errors.push('payload.severity invalid');
  }
  return errors;
}

export function createSaasSink(received: Received[] = [], limit = 10_000): http.Server {
  return http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/api/received') {
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(received));
    }
    if (req.method === 'GET' && req.url === '/health') return void res.writeHead(200).end('ok');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, any>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      } catch {
        res.writeHead(400).end('invalid_payload');
        return;
      }
      const keep = (service: Received['service']) => {
        received.push({ service, at: Date.now(), body });
        if (received.length > limit) received.splice(0, received.length - limit);
      };
      if (req.method === 'POST' && req.url?.startsWith('/services/')) {
        if (!validSlack(body)) return void res.writeHead(400).end('no_text');
        keep('slack');
        return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      }
      if (req.method === 'POST' && req.url === '/v2/enqueue') {
        const errors = pagerDutyErrors(body);
        if (errors.length) return void res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'invalid event', message: 'Event object is invalid', errors }));
        keep('pagerduty');
        return void res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body.dedup_key }));
      }
      res.writeHead(404).end();
    });
  });
}

/** An in-process sink on a free port (tests). */
export async function startSaasReceiver(): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = createSaasSink(received);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, close: () => new Promise((r) => server.close(() => r())) };
}

if (require.main === module) {
  const [host, port] = (process.argv[2] ?? '127.0.0.1:8099').split(':') as [string, string];
  const server = createSaasSink();
  server.listen(Number(port), host, () => process.stdout.write(`saas-sink listening on ${host}:${port} (Slack webhooks at /services/..., PagerDuty at /v2/enqueue, read back at /api/received)\n`));
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => server.close(() => process.exit(0)));
}
