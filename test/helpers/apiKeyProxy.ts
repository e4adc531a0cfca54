// Test support: a small gRPC-aware TLS proxy that does what Temporal Cloud's front door does with
// API keys — every call must carry `authorization: Bearer <key>`, or it is answered
// UNAUTHENTICATED — and forwards accepted calls to the plaintext dev server over HTTP/2.
// It records the auth headers it saw so a test can check what the SDK really sends.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface SeenCall {
  path: string;
  authorization?: string;
  namespace?: string;
}

export interface ApiKeyProxy {
  port: number;
  seen: SeenCall[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([':status', ':method', ':path', ':scheme', ':authority']);
const copyHeaders = (h: http2.IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([k, v]) => !HOP_BY_HOP.has(k) && v !== undefined)) as http2.OutgoingHttpHeaders;

export async function startApiKeyProxy(opts: { upstream: string; apiKey: string; cert: Buffer; key: Buffer }): Promise<ApiKeyProxy> {
  const seen: SeenCall[] = [];
  const upstream = http2.connect(`http://${opts.upstream}`);
  upstream.on('error', () => undefined); // surfaced per stream below
  const server = http2.createSecureServer({ cert: opts.cert, key: opts.key });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    const authorization = headers.authorization as string | undefined;
    seen.push({ path, authorization, namespace: headers['temporal-namespace'] as string | undefined });
    stream.on('error', () => undefined);
    if (authorization !== `Bearer ${opts.apiKey}`) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'Request unauthorized: API key missing or invalid' }, { endStream: true });
      return;
    }
    const up = upstream.request({ ':method': 'POST', ':path': path, ...copyHeaders(headers) });
    let trailers: http2.OutgoingHttpHeaders = {};
    up.on('response', (h) => {
      // A trailers-only answer (an error) carries grpc-status in its headers: pass it as it is.
      if (h['grpc-status'] !== undefined) stream.respond({ ':status': 200, ...copyHeaders(h) }, { endStream: true });
      else {
        stream.respond({ ':status': 200, ...copyHeaders(h) }, { waitForTrailers: true });
        up.pipe(stream);
      }
    });
    up.on('trailers', (t) => (trailers = copyHeaders(t)));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    up.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('close', () => up.close());
    stream.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        upstream.close();
        server.close(() => resolve());
        // Open client sessions (long polls) would hold close() forever.
        setTimeout(resolve, 1000).unref();
      }),
  };
}
