// The codec HTTP endpoint the Temporal Web UI (and `temporal` CLI) call to show decoded payloads
// to authorised operators. Protocol: POST /encode and /decode with {"payloads": [{metadata, data}]}
// (base64 fields), as the Temporal UI's "codec endpoint" setting expects. Custodian shares are
// not taken here (infra/shareIntake.ts has its own listener and tokens on the restore worker).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Accepted bearer tokens. */
  tokens: string[];
  corsOrigins: string[];
  /** Dev only: origins served without a token when the peer is on loopback. */
  anonymousLoopbackOrigins: string[];
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

export function tokenMatches(presented: string, tokens: string[]): boolean {
  const a = crypto.createHash('sha256').update(presented).digest();
  // Constant-time compare over digests so length and content do not leak through timing.
  return tokens.some((t) => crypto.timingSafeEqual(a, crypto.createHash('sha256').update(t).digest()));
}

function isLoopback(addr: string | undefined): boolean {
  return !!addr && (addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.'));
}

export function createCodecServer(opts: CodecServerOptions): http.Server {
  const max = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  return http.createServer((req, res) => {
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
    const auth = req.headers.authorization ?? '';
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    const anonymousOk = !!origin && opts.anonymousLoopbackOrigins.includes(origin) && isLoopback(req.socket.remoteAddress);
    if (!anonymousOk && !(bearer && tokenMatches(bearer, opts.tokens))) {
      reply(401, { error: 'a valid bearer token is required' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reply(413, { error: 'body too large' });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      let body: { payloads?: JsonPayload[] };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        if (!Array.isArray(body.payloads)) throw new Error('payloads must be an array');
      } catch (err) {
        reply(400, { error: `bad request: ${(err as Error).message}` });
        return;
      }
      const payloads = body.payloads.map(fromJson);
      const op = route === '/encode' ? opts.codec.encode(payloads) : opts.codec.decode(payloads);
      op.then(
        (out) => reply(200, { payloads: out.map(toJson) }),
        // The error text never includes payload contents; it names the failing key id at most.
        (err: Error) => reply(400, { error: `cannot ${route.slice(1)}: ${err.message}` }),
      );
    });
  });
}
