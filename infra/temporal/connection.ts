// The one place that turns `cfg.temporal` into connection options for the Temporal frontend.
// Every connection — the worker's NativeConnection, the CLI's Connection, tests, bench — passes
// the result of `temporalConnectionOptions(cfg)` so TLS, mTLS and API keys apply everywhere.
// The option object holds key material: never log it; log `describeTemporalConnection` instead.
import * as fs from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { ConfigError, readSecretFile, type Config } from '../config';

/** Accepted by both `Connection.connect` (client) and `NativeConnection.connect` (worker). */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
  metadata?: Record<string, string>;
}

function readPem(file: string, field: string): Buffer {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`config: cannot read ${field} file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  // Checked here so a wrong file fails at start with its name, not deep inside the TLS stack;
  // the message never quotes the content (it may be a private key).
  if (!buf.includes('-----BEGIN ')) throw new ConfigError(`config: ${field} file ${file} is not PEM (no "-----BEGIN" line)`);
  return buf;
}

/** True when connections to Temporal use TLS under this configuration. */
export function temporalUsesTls(t: Config['temporal']): boolean {
  return t.tls.enabled || !!(t.tls.caFile || t.tls.certFile || t.tls.serverName || t.apiKeyFile);
}

export function temporalConnectionOptions(cfg: Pick<Config, 'temporal'>): TemporalConnectionOptions {
  const t = cfg.temporal;
  const opts: TemporalConnectionOptions = { address: t.address };
  if (temporalUsesTls(t)) {
    const tls: TLSConfig = {};
    if (t.tls.caFile) tls.serverRootCACertificate = readPem(t.tls.caFile, 'temporal.tls.caFile');
    if (t.tls.certFile && t.tls.keyFile) tls.clientCertPair = { crt: readPem(t.tls.certFile, 'temporal.tls.certFile'), key: readPem(t.tls.keyFile, 'temporal.tls.keyFile') };
    if (t.tls.serverName) tls.serverNameOverride = t.tls.serverName;
    opts.tls = tls;
  }
  if (t.apiKeyFile) {
    opts.apiKey = readSecretFile(t.apiKeyFile, 'temporal.apiKeyFile');
    // Temporal Cloud routes API-key calls by this header (required on regional endpoints).
    opts.metadata = { 'temporal-namespace': t.namespace };
  }
  return opts;
}

/** What to log about the connection: where, and which protections — never key material. */
export function describeTemporalConnection(cfg: Pick<Config, 'temporal'>): Record<string, string | boolean> {
  const t = cfg.temporal;
  return {
    temporal: t.address,
    tls: temporalUsesTls(t),
    mtls: !!t.tls.certFile,
    apiKey: !!t.apiKeyFile,
    ...(t.tls.serverName ? { serverName: t.tls.serverName } : {}),
  };
}

/** Wraps a connect error with the address and the TLS mode, so "refused" says what was tried. */
export function temporalConnectError(cfg: Pick<Config, 'temporal'>, err: unknown): Error {
  const t = cfg.temporal;
  const mode = t.tls.certFile ? 'mTLS' : temporalUsesTls(t) ? 'TLS' : 'plaintext';
  const hint = t.tls.certFile
    ? ' (check that the client certificate is issued by a CA the server trusts, and temporal.tls.caFile/serverName match the server certificate)'
    : temporalUsesTls(t)
      ? ' (check temporal.tls.caFile/serverName, and whether the server requires a client certificate: temporal.tls.certFile/keyFile)'
      : '';
  return new Error(`Temporal at ${t.address} unreachable over ${mode}: ${causeChain(err)}${hint}`);
}

/** "outer: inner: innermost" — the SDK wraps the server's answer (e.g. UNAUTHENTICATED) in a cause. */
function causeChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    const msg = typeof e.message === 'string' ? e.message.split('\n')[0]! : String(e);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
  }
  return parts.join(': ').slice(0, 1000);
}
