// The one OpenBao/Vault client of a vault-dr process. Every request, node-vault's and the streams
// node-vault cannot carry, goes over ONE HTTP stack: undici with one keep-alive Agent that holds the
// TLS trust (vault.caFile). node-vault stays where it serves (its endpoint catalogue and answer
// handling: AppRole login, token renewal, read, write, health), with this transport plugged in
// through its `request-promise` hook; the snapshot stream and the status-sensitive KV reads use the
// same transport directly (node-vault would buffer a snapshot in memory and has no keep-alive or
// per-call timeout control).
// Tokens: AppRole (or token-file) login at the point of use, renew-self at two thirds of the TTL,
// a fresh login when renewal is refused, and one login or renewal in flight at a time (concurrent
// callers await the same promise). The token lives only in this process's memory.
import * as fs from 'node:fs';
import nodeVault from 'node-vault';
import { Agent, fetch, type Response } from 'undici';
import type { Config } from '../config';
import { ConfigError, readSecretFile } from '../config';

export class BaoError extends Error {
  override name = 'BaoError';
  constructor(
    message: string,
    /** HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    /**
     * For HTTP 503 only: what sys/seal-status said right after. true = sealed; false = unsealed
     * (the 503 came from a load balancer with no server, a standby, a node starting up);
     * undefined = seal-status could not be read either.
     */
    readonly sealed?: boolean,
  ) {
    super(message);
  }
}

export interface SysHealth {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  performance_standby?: boolean;
  server_time_utc?: number;
  version: string;
  cluster_name?: string;
  cluster_id?: string;
  leader_address?: string;
}

export interface RaftServer {
  node_id: string;
  address: string;
  leader: boolean;
  voter: boolean;
  protocol_version?: string;
}

export interface AutopilotServer {
  healthy: boolean;
  name?: string;
  id?: string;
  address?: string;
  status?: string;
  last_contact?: string;
}

type VaultConfig = Config['vault'];

export interface BaoClientOptions {
  /** A stream (snapshot) that moves no byte for this long fails (undici's body timeout). Default 30 s. */
  stallTimeoutMs?: number;
}

interface HeldToken {
  value: string;
  /** ms since epoch; Infinity for a token without TTL (root, periodic without TTL). */
  expiresAt: number;
  /** When to renew (two thirds of the TTL) or, when not renewable, log in again. */
  refreshAt: number;
  renewable: boolean;
  /** The TTL the login granted, to notice renewals capped by the token's max TTL. */
  grantedTtlMs: number;
}

/** What node-vault's `request-promise` hook is called with (the subset it uses). */
interface NodeVaultRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
}

export class BaoClient {
  private readonly vault: nodeVault.client;
  private readonly agent: Agent;
  private token?: HeldToken;
  /** The login or renewal in flight; concurrent callers await this one promise. */
  private pending?: Promise<string>;
  /** Counters for tests and metrics: how often this process logged in and renewed. */
  readonly stats = { logins: 0, renewals: 0, renewalsRefused: 0 };

  constructor(
    private readonly cfg: VaultConfig,
    opts: BaoClientOptions = {},
  ) {
    let ca: Buffer | undefined;
    if (cfg.caFile) {
      try {
        ca = fs.readFileSync(cfg.caFile);
      } catch (err) {
        throw new ConfigError(`config: vault.caFile ${cfg.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    this.agent = new Agent({
      // The CA replaces the system roots for OpenBao: a private CA is the common case.
      connect: ca ? { ca } : undefined,
      keepAliveTimeout: 10_000,
      // Per-call deadlines are AbortSignals; these catch a server that stops mid-answer.
      headersTimeout: Math.max(cfg.requestTimeoutMs, 60_000),
      bodyTimeout: opts.stallTimeoutMs ?? 30_000,
    });
    const transport = { defaults: () => (o: NodeVaultRequest) => this.nodeVaultRequest(o) };
    this.vault = nodeVault({ apiVersion: 'v1', endpoint: cfg.address, 'request-promise': transport });
  }

  get address(): string {
    return this.cfg.address;
  }

  /** Closes the keep-alive connections (tests, CLI exit). */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Unauthenticated health; every status code is an answer, only a network failure is an error. */
  async health(): Promise<SysHealth> {
    let body: unknown;
    try {
      // node-vault returns the JSON body for every sys/health status code (429, 501, 503, ...).
      body = await this.vault.health({ standbyok: true });
    } catch (err) {
      throw await this.toError(err, `GET ${this.cfg.address}/v1/sys/health`);
    }
    // A load balancer with no server behind it answers 503 with its own page: not a health answer.
    if (!body || typeof body !== 'object' || !('sealed' in body)) {
      throw new BaoError(`GET ${this.cfg.address}/v1/sys/health: the answer is not OpenBao's (a load balancer without a healthy server?)`, 0);
    }
    return body as SysHealth;
  }

  async raftConfiguration(): Promise<RaftServer[]> {
    const body = (await this.read('sys/storage/raft/configuration')) as { data?: { config?: { servers?: RaftServer[] } } };
    return body.data?.config?.servers ?? [];
  }

  /** Raft autopilot's view: overall health, failure tolerance and each server's health. */
  async autopilotState(): Promise<{ healthy: boolean; failure_tolerance: number; leader: string; servers: Record<string, AutopilotServer> }> {
    const body = (await this.read('sys/storage/raft/autopilot/state')) as { data?: { healthy?: boolean; failure_tolerance?: number; leader?: string; servers?: Record<string, AutopilotServer> } };
    return { healthy: body.data?.healthy ?? false, failure_tolerance: body.data?.failure_tolerance ?? 0, leader: body.data?.leader ?? '', servers: body.data?.servers ?? {} };
  }

  /** sys/leader (unauthenticated): whether this node is the active one, and who is. */
  /** sys/leader; `raftAppliedIndex`: the last raft entry the answering node applied (integrated storage only). */
  async leader(): Promise<{ isSelf: boolean; leaderAddress: string; haEnabled: boolean; raftAppliedIndex?: number }> {
    const res = await this.raw('GET', 'sys/leader', undefined);
    const body = (await res.json()) as { is_self?: boolean; leader_address?: string; ha_enabled?: boolean; raft_applied_index?: unknown };
    const applied = typeof body.raft_applied_index === 'number' && body.raft_applied_index > 0 ? body.raft_applied_index : undefined;
    return { isSelf: !!body.is_self, leaderAddress: body.leader_address ?? '', haEnabled: !!body.ha_enabled, raftAppliedIndex: applied };
  }

  /**
   * Streams the raft snapshot of the active node. The caller consumes or cancels the body. No
   * overall deadline (a large snapshot streams for minutes), but a stream that moves no byte for
   * the stall timeout fails instead of hanging.
   */
  async snapshotStream(): Promise<ReadableStream<Uint8Array>> {
    const res = await this.authed((token) => this.raw('GET', 'sys/storage/raft/snapshot', token, null));
    if (!res.body) throw new BaoError('GET sys/storage/raft/snapshot: empty body', res.status);
    return res.body as ReadableStream<Uint8Array>;
  }

  /** Writes a KV v2 secret (data only); returns the new version. */
  async writeKv(mount: string, path: string, data: Record<string, string>): Promise<number> {
    const body = (await this.authed((token) => this.vault.write(`${mount}/data/${path}`, { data }, { headers: { 'X-Vault-Token': token } }))) as { data?: { version?: number } };
    return body.data?.version ?? 0;
  }

  /**
   * An authenticated GET that answers every HTTP status with its body (errors as { errors: [...] });
   * only a network failure or a 503 (the server, not the path, is unavailable) throws. For callers
   * that branch on the status, like the KV inventory.
   */
  async apiGet(apiPath: string): Promise<{ status: number; body: unknown }> {
    try {
      const res = await this.authed((token) => this.raw('GET', apiPath, token));
      return { status: res.status, body: (await res.json()) as unknown };
    } catch (err) {
      if (err instanceof BaoError && err.status >= 400 && err.status !== 503) return { status: err.status, body: { errors: [err.message] } };
      throw err;
    }
  }

  /** Any authenticated read, for activities that need an endpoint without a helper yet. */
  async read(path: string): Promise<unknown> {
    return this.authed((token) => this.vault.read(path, { headers: { 'X-Vault-Token': token } }));
  }

  /** sys/seal-status (unauthenticated): true/false, or undefined when it cannot be read either. */
  async sealed(): Promise<boolean | undefined> {
    try {
      const res = await this.send('GET', `${this.cfg.address}/v1/sys/seal-status`, {}, undefined, Math.min(this.cfg.requestTimeoutMs, 5_000));
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        return undefined;
      }
      const body = (await res.json()) as { sealed?: unknown };
      return typeof body.sealed === 'boolean' ? body.sealed : undefined;
    } catch {
      return undefined;
    }
  }

  // ---- tokens ----------------------------------------------------------------------------------

  /** Logs in or renews now if the held token needs it (a login is a raft write: do it before counting raft entries). */
  async ensureToken(): Promise<void> {
    await this.currentToken();
  }

  /** A token valid now: the held one, else the result of the one login/renewal in flight. */
  private async currentToken(): Promise<string> {
    const t = this.token;
    if (t && Date.now() < t.refreshAt) return t.value;
    this.pending ??= this.refresh(t).finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async refresh(t: HeldToken | undefined): Promise<string> {
    // Renew while the token still lives (with a margin for the round trip); an expired one needs a login.
    if (t?.renewable && Date.now() < t.expiresAt - 250) {
      try {
        return await this.renew(t);
      } catch (err) {
        const e = await this.toError(err, 'renew-self');
        // A refused renewal (expired, revoked, max TTL reached) means: log in again. A network
        // failure is reported as is; the next call tries again.
        if (e.status < 400 || e.status >= 500) throw e;
        this.stats.renewalsRefused++;
      }
    }
    this.token = undefined;
    return this.login();
  }

  private async renew(t: HeldToken): Promise<string> {
    const body = (await this.vault.tokenRenewSelf({ requestOptions: { headers: { 'X-Vault-Token': t.value } } })) as { auth?: { lease_duration?: number; renewable?: boolean } };
    this.stats.renewals++;
    // node-vault keeps a renewed token as its default too; every call here passes its token explicitly.
    this.vault.token = '';
    const ttlMs = (body.auth?.lease_duration ?? 0) * 1000;
    const now = Date.now();
    // Renewal near the max TTL grants less each time: once under a third of the login's TTL, the
    // next refresh logs in instead.
    const renewable = !!body.auth?.renewable && ttlMs * 3 >= t.grantedTtlMs;
    this.token = { ...t, expiresAt: ttlMs ? now + ttlMs : Infinity, refreshAt: ttlMs ? now + (ttlMs * 2) / 3 : Infinity, renewable };
    return t.value;
  }

  private async login(): Promise<string> {
    this.stats.logins++;
    let value: string;
    let ttlS = 0;
    let renewable = false;
    if (this.cfg.roleIdFile && this.cfg.secretIdFile) {
      const roleId = readSecretFile(this.cfg.roleIdFile, 'vault.roleIdFile');
      const secretId = readSecretFile(this.cfg.secretIdFile, 'vault.secretIdFile');
      let body: { auth?: { client_token?: string; lease_duration?: number; renewable?: boolean } };
      try {
        body = (await this.vault.approleLogin({ role_id: roleId, secret_id: secretId, mount_point: this.cfg.approleMount })) as typeof body;
      } catch (err) {
        throw await this.toError(err, `AppRole login at ${this.cfg.address}`);
      }
      // node-vault keeps the last login's token as its default; every call here passes its token explicitly.
      this.vault.token = '';
      if (!body.auth?.client_token) throw new BaoError(`AppRole login at ${this.cfg.address}: no token in the answer`, 200);
      value = body.auth.client_token;
      ttlS = body.auth.lease_duration ?? 0;
      renewable = !!body.auth.renewable;
    } else if (this.cfg.tokenFile) {
      value = readSecretFile(this.cfg.tokenFile, 'vault.tokenFile');
      try {
        const body = (await this.vault.tokenLookupSelf({ requestOptions: { headers: { 'X-Vault-Token': value } } })) as { data?: { ttl?: number; renewable?: boolean } };
        ttlS = body.data?.ttl ?? 0;
        renewable = !!body.data?.renewable;
      } catch {
        // A policy without lookup-self: use the token as it is; a 403 later reads the file again.
      }
    } else {
      throw new ConfigError('config: vault: set roleIdFile and secretIdFile (AppRole) or tokenFile');
    }
    const now = Date.now();
    const ttlMs = ttlS * 1000;
    this.token = { value, expiresAt: ttlMs ? now + ttlMs : Infinity, refreshAt: ttlMs ? now + (ttlMs * 2) / 3 : Infinity, renewable, grantedTtlMs: ttlMs };
    return value;
  }

  /** The server refused `used` (403): replace it once, however many callers saw the refusal. */
  private async tokenRefused(used: string): Promise<string> {
    if (this.pending) await this.pending.catch(() => undefined);
    if (this.token && this.token.value !== used) return this.token.value;
    this.token = undefined;
    return this.currentToken();
  }

  private async authed<T>(call: (token: string) => Promise<T>): Promise<T> {
    const token = await this.currentToken();
    try {
      return await call(token);
    } catch (err) {
      const e = await this.toError(err, 'request');
      if (e.status !== 403) throw e;
      // Expired or revoked token: one fresh token (shared with concurrent callers), then the real answer.
      const fresh = await this.tokenRefused(token);
      try {
        return await call(fresh);
      } catch (err2) {
        throw await this.toError(err2, 'request');
      }
    }
  }

  // ---- transport -------------------------------------------------------------------------------

  /** The one HTTP path of this client: undici fetch over the shared Agent. */
  private async send(method: string, url: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number | null): Promise<Response> {
    try {
      return await fetch(url, {
        method,
        headers,
        body,
        dispatcher: this.agent,
        signal: timeoutMs === null ? undefined : AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${(timeoutMs ?? 0) / 1000}s` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new BaoError(`${method} ${url}: OpenBao unreachable (${why})`, 0);
    }
  }

  private async nodeVaultRequest(o: NodeVaultRequest): Promise<{ statusCode: number; body: unknown; request: { path: string } }> {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    // node-vault sends its default token when a call passes none; an empty one means "unauthenticated".
    if (!headers['X-Vault-Token']) delete headers['X-Vault-Token'];
    let body: string | undefined;
    if (o.json !== undefined && o.json !== null && typeof o.json === 'object') {
      body = JSON.stringify(o.json);
      headers['Content-Type'] = 'application/json';
    }
    const res = await this.send(o.method, o.uri, headers, body, this.cfg.requestTimeoutMs);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON (a proxy's error page): kept as text
    }
    return { statusCode: res.status, body: parsed, request: { path: new URL(o.uri).pathname } };
  }

  /**
   * A raw request for streams and status-sensitive reads. Non-2xx answers become BaoError with the
   * server's error text (and, for 503, what sys/seal-status says).
   */
  private async raw(method: string, path: string, token: string | undefined, timeoutMs: number | null = this.cfg.requestTimeoutMs): Promise<Response> {
    const res = await this.send(method, `${this.cfg.address}/v1/${path}`, token ? { 'X-Vault-Token': token } : {}, undefined, timeoutMs);
    if (res.status >= 400) {
      const text = await res.text().catch(() => '');
      let detail = text.slice(0, 300);
      try {
        detail = ((JSON.parse(text) as { errors?: string[] }).errors ?? []).join('; ');
      } catch {
        // not JSON
      }
      throw await this.toError(new BaoError(`${method} /v1/${path}: HTTP ${res.status}${detail ? `: ${detail}` : ''}`, res.status), path);
    }
    return res;
  }

  /** Any failure as a BaoError; a 503 carries what sys/seal-status says, so callers can tell sealed from unavailable. */
  private async toError(err: unknown, what: string): Promise<BaoError> {
    const e = toBaoError(err, what);
    if (e.status !== 503 || this.asked.has(e)) return e;
    const sealed = await this.sealed();
    const note = sealed === true ? 'sys/seal-status: sealed' : sealed === false ? 'sys/seal-status: unsealed, so the server or the load balancer in front of it is unavailable' : 'sys/seal-status unreadable too';
    const answered = new BaoError(`${e.message} (${note})`, 503, sealed);
    this.asked.add(answered);
    return answered;
  }

  /** 503 errors whose seal status was already asked (an error passes toError more than once). */
  private readonly asked = new WeakSet<BaoError>();
}

export function toBaoError(err: unknown, what: string): BaoError {
  if (err instanceof BaoError) return err;
  const e = err as { response?: { statusCode?: number; body?: { errors?: string[] } | string }; code?: string; message?: string };
  const status = e.response?.statusCode ?? 0;
  if (status === 0) return new BaoError(`${what}: OpenBao unreachable (${e.code ?? e.message ?? 'network error'})`, 0);
  const body = e.response?.body;
  const detail = (typeof body === 'object' ? body?.errors?.join('; ') : undefined) || (e.message && e.message !== `Status ${status}` ? e.message : '');
  return new BaoError(`${what}: HTTP ${status}${detail ? `: ${detail}` : ''}`, status);
}
