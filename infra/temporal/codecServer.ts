// The codec HTTP endpoint the Temporal Web UI (and `temporal` CLI) call to show decoded payloads
// to authorised operators. Protocol: POST /encode and /decode with {"payloads": [{metadata, data}]}
// (base64 fields), as the Temporal UI's "codec endpoint" setting expects. Who may call it is decided
// in codecAuth.ts; with `tls` it serves HTTPS (the UI passes its access token only to https URLs).
// Custodian shares are not taken here (infra/vault/shareIntake.ts has its own listener and tokens on the
// restore worker).
import { readBody } from '../http';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { createCodecAuthorizer, type CodecAuthorizer, type OidcOptions } from './codecAuth';
import type { Payload, PayloadCodec } from '@temporalio/common';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Accepted static bearer tokens (CLI, scripts). */
  tokens: string[];
  corsOrigins: string[];
  /** Dev only: origins served without a token when the peer is on loopback. */
  anonymousLoopbackOrigins: string[];
  /** Accept the Web UI's OIDC access tokens (JWTs) as well. */
  oidc?: OidcOptions;
  /** PEM certificate chain and key: serve HTTPS instead of HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  maxBodyBytes?: number;
}

export function readTokensFile(file: string | undefined): string[] {
  if (!file) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: p.data === undefined ? undefined : Buffer.from(p.data, 'base64'),
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
    data: p.data ? Buffer.from(p.data).toString('base64') : undefined,
  };
}

export function createCodecServer(opts: CodecServerOptions): http.Server | https.Server {
  const max = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  const authorize: CodecAuthorizer = createCodecAuthorizer({ tokens: opts.tokens, anonymousLoopbackOrigins: opts.anonymousLoopbackOrigins, oidc: opts.oidc });
  const handler: http.RequestListener = (req, res) => {
    const origin = req.headers.origin;
    if (origin && opts.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-Namespace');
      res.setHeader('Vary', 'Origin');
    }
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204);
      res.end();
      return;
    }
    const route = req.url?.split('?')[0] ?? '';
    if (req.method !== 'POST' || (route !== '/encode' && route !== '/decode')) {
      reply(404, { error: 'POST /encode or /decode' });
      return;
    }
    authorize(req).then(
      (verdict) => (verdict.ok ? codecRoute(req, res, route, reply) : reply(verdict.status, { error: verdict.error })),
      () => reply(500, { error: 'authorization failed' }),
    );
  };
  const codecRoute = (req: http.IncomingMessage, res: http.ServerResponse, route: string, reply: (status: number, body: unknown) => void) => {
    readBody(req, max).then(
      (raw) => {
        if (res.writableEnded) return;
        let body: { payloads?: JsonPayload[] };
        try {
          body = JSON.parse(raw.toString('utf8')) as typeof body;
          if (!Array.isArray(body.payloads)) throw new Error('payloads must be an array');
        } catch (err) {
          // Never JSON.parse's message: it quotes the body, which may be a plaintext payload.
          reply(400, { error: err instanceof SyntaxError ? 'bad request: body is not valid JSON' : `bad request: ${(err as Error).message}` });
          return;
        }
        const payloads = body.payloads.map(fromJson);
        const op = route === '/encode' ? opts.codec.encode(payloads) : opts.codec.decode(payloads);
        op.then(
          (out) => reply(200, { payloads: out.map(toJson) }),
          // The error text never includes payload contents; it names the failing key id at most.
          (err: Error) => reply(400, { error: `cannot ${route.slice(1)}: ${err.message}` }),
        );
      },
      () => {
        reply(413, { error: 'body too large' });
        req.destroy();
      },
    );
  };
  return opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
}
