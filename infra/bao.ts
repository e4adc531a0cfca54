// A small OpenBao/Vault client built on node-vault: AppRole (or token-file) login at the point of
// use, transparent re-login when the token expires, and typed helpers for the endpoints vault-dr
// reads. The token lives only in this process's memory; it is never logged or returned.
import nodeVault from 'node-vault';
import type { Config } from './config';
import { readSecretFile } from './config';

export class BaoError extends Error {
  override name = 'BaoError';
  constructor(
    message: string,
    /** HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
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

type VaultConfig = Config['vault'];

export class BaoClient {
  private readonly vault: nodeVault.client;
  private loggedIn = false;

  constructor(private readonly cfg: VaultConfig) {
    this.vault = nodeVault({ apiVersion: 'v1', endpoint: cfg.address, requestOptions: { timeout: cfg.requestTimeoutMs } });
  }

  get address(): string {
    return this.cfg.address;
  }

  /** Unauthenticated health; every status code is an answer, only a network failure is an error. */
  async health(): Promise<SysHealth> {
    try {
      // node-vault returns the JSON body for every sys/health status code (429, 501, 503, ...).
      return (await this.vault.health({ standbyok: true })) as SysHealth;
    } catch (err) {
      throw toBaoError(err, `GET ${this.cfg.address}/v1/sys/health`);
    }
  }

  async raftConfiguration(): Promise<RaftServer[]> {
    const body = (await this.authed(() => this.vault.read('sys/storage/raft/configuration'))) as {
      data?: { config?: { servers?: RaftServer[] } };
    };
    return body.data?.config?.servers ?? [];
  }

  /** Raft autopilot's view: overall health, failure tolerance and each server's health. */
  async autopilotState(): Promise<{ healthy: boolean; failure_tolerance: number; servers: Record<string, { healthy: boolean; name?: string }> }> {
    const body = (await this.authed(() => this.vault.read('sys/storage/raft/autopilot/state'))) as { data?: { healthy?: boolean; failure_tolerance?: number; servers?: Record<string, { healthy: boolean; name?: string }> } };
    return { healthy: body.data?.healthy ?? false, failure_tolerance: body.data?.failure_tolerance ?? 0, servers: body.data?.servers ?? {} };
  }

  /** sys/leader (unauthenticated): whether this node is the active one, and who is. */
  async leader(): Promise<{ isSelf: boolean; leaderAddress: string; haEnabled: boolean }> {
    const res = await this.raw('GET', 'sys/leader', false);
    const body = (await res.json()) as { is_self?: boolean; leader_address?: string; ha_enabled?: boolean };
    return { isSelf: !!body.is_self, leaderAddress: body.leader_address ?? '', haEnabled: !!body.ha_enabled };
  }

  /** Streams the raft snapshot of the active node. The caller consumes or cancels the body. */
  async snapshotStream(): Promise<ReadableStream<Uint8Array>> {
    // No overall timeout: a large snapshot streams for minutes; stalls are caught by the activity heartbeat timeout.
    const res = await this.raw('GET', 'sys/storage/raft/snapshot', true, null);
    if (!res.body) throw new BaoError('GET sys/storage/raft/snapshot: empty body', res.status);
    return res.body;
  }

  /** Writes a KV v2 secret (data only); returns the new version. */
  async writeKv(mount: string, path: string, data: Record<string, string>): Promise<number> {
    const body = (await this.authed(() => this.vault.write(`${mount}/data/${path}`, { data }))) as { data?: { version?: number } };
    return body.data?.version ?? 0;
  }

  /**
   * A raw authenticated (or not) request via fetch, for streams node-vault would buffer.
   * Non-2xx answers become BaoError with the server's error text.
   */
  private async raw(method: string, path: string, auth: boolean, timeoutMs: number | null = this.cfg.requestTimeoutMs): Promise<Response> {
    const call = async () => {
      let res: Response;
      try {
        res = await fetch(`${this.cfg.address}/v1/${path}`, {
          method,
          headers: auth ? { 'X-Vault-Token': this.vault.token } : {},
          signal: timeoutMs === null ? undefined : AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new BaoError(`${method} ${this.cfg.address}/v1/${path}: OpenBao unreachable (${(err as Error).cause ? String((err as { cause: { code?: string } }).cause.code) : (err as Error).message})`, 0);
      }
      if (res.status >= 400) {
        const text = await res.text().catch(() => '');
        let detail = text;
        try {
          detail = ((JSON.parse(text) as { errors?: string[] }).errors ?? []).join('; ');
        } catch {
          // not JSON
        }
        throw new BaoError(`${method} /v1/${path}: HTTP ${res.status}${detail ? `: ${detail}` : ''}`, res.status);
      }
      return res;
    };
    return auth ? this.authed(call) : call();
  }

  /**
   * An authenticated GET over keep-alive fetch that answers every HTTP status with its body
   * (errors as { errors: [...] }); only a network failure throws. For callers that branch on the
   * status, like the KV inventory.
   */
  async apiGet(apiPath: string): Promise<{ status: number; body: unknown }> {
    try {
      const res = await this.raw('GET', apiPath, true);
      return { status: res.status, body: (await res.json()) as unknown };
    } catch (err) {
      if (err instanceof BaoError && err.status >= 400) return { status: err.status, body: { errors: [err.message] } };
      throw err;
    }
  }

  /** Any authenticated read, for activities that need an endpoint without a helper yet. */
  async read(path: string): Promise<unknown> {
    return this.authed(() => this.vault.read(path));
  }

  private async login(): Promise<void> {
    if (this.cfg.roleIdFile && this.cfg.secretIdFile) {
      const roleId = readSecretFile(this.cfg.roleIdFile, 'vault.roleIdFile');
      const secretId = readSecretFile(this.cfg.secretIdFile, 'vault.secretIdFile');
      try {
        await this.vault.approleLogin({ role_id: roleId, secret_id: secretId, mount_point: this.cfg.approleMount });
      } catch (err) {
        throw toBaoError(err, `AppRole login at ${this.cfg.address}`);
      }
    } else if (this.cfg.tokenFile) {
      this.vault.token = readSecretFile(this.cfg.tokenFile, 'vault.tokenFile');
    }
    this.loggedIn = true;
  }

  private async authed<T>(call: () => Promise<T>): Promise<T> {
    if (!this.loggedIn) await this.login();
    try {
      return await call();
    } catch (err) {
      const e = toBaoError(err, 'request');
      if (e.status !== 403) throw e;
      // Expired or revoked token: log in again once, then give the real answer.
      await this.login();
      try {
        return await call();
      } catch (err2) {
        throw toBaoError(err2, 'request');
      }
    }
  }
}

export function toBaoError(err: unknown, what: string): BaoError {
  if (err instanceof BaoError) return err;
  const e = err as { response?: { statusCode?: number; body?: { errors?: string[] } }; code?: string; message?: string };
  const status = e.response?.statusCode ?? 0;
  if (status === 0) return new BaoError(`${what}: OpenBao unreachable (${e.code ?? e.message ?? 'network error'})`, 0);
  const detail = e.response?.body?.errors?.join('; ') || e.message || '';
  return new BaoError(`${what}: HTTP ${status}${detail ? `: ${detail}` : ''}`, status);
}
