// Reads the migration's secrets from an OpenBao/Vault API — the live cluster, or a backup restored
// into a throwaway staging OpenBao — with the migration worker's own AppRole (the same role exists in
// the backup, so the restored copy accepts it). Values stay in the activity that asked for them;
// errors name the path and the HTTP status, never a value.
import { fetch } from 'undici';
import { ErrorType, failure } from '../../common/errors';
import { readSecretFile } from '../config';

export interface VaultReader {
  address: string;
  /** KV v2 read: the data and its version. */
  read(path: string): Promise<{ data: Record<string, unknown>; version: number }>;
  /** capabilities-self on the API paths. */
  capabilities(paths: string[]): Promise<Record<string, string[]>>;
  health(): Promise<{ initialized: boolean; sealed: boolean; standby: boolean }>;
  close(): Promise<void>;
}

const UNAVAILABLE_STATUS = new Set([429, 472, 473, 501, 502, 503, 504]);

async function call(address: string, method: string, p: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  let res;
  try {
    res = await fetch(`${address}/v1/${p}`, {
      method,
      headers: { ...(token ? { 'X-Vault-Token': token } : {}), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw failure(ErrorType.VaultUnavailable, `Vault at ${address} unavailable: ${e.cause?.code ?? e.message}`);
  }
  const text = await res.text();
  let json: any = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = {};
  }
  return { status: res.status, json };
}

/** Logs in with the AppRole files and returns a reader; `kvMount` is the KV v2 mount. */
export async function openVaultReader(o: { address: string; roleIdFile?: string; secretIdFile?: string; kvMount: string }): Promise<VaultReader> {
  if (!o.roleIdFile || !o.secretIdFile) throw failure(ErrorType.KeyMaterialMissing, 'migration.roleIdFile/secretIdFile are not set on this worker: it cannot read the migration secrets');
  const h = await call(o.address, 'GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200');
  if (h.json.sealed) throw failure(ErrorType.VaultUnavailable, `Vault at ${o.address} is sealed`);
  if (UNAVAILABLE_STATUS.has(h.status)) throw failure(ErrorType.VaultUnavailable, `Vault at ${o.address} answered HTTP ${h.status}`);
  const login = await call(o.address, 'POST', 'auth/approle/login', undefined, {
    role_id: readSecretFile(o.roleIdFile, 'migration.roleIdFile'),
    secret_id: readSecretFile(o.secretIdFile, 'migration.secretIdFile'),
  });
  if (login.status !== 200) throw failure(ErrorType.VaultAuthFailed, `migration AppRole login at ${o.address} failed: HTTP ${login.status} ${(login.json.errors ?? []).join('; ').slice(0, 200)}`);
  const token = login.json.auth.client_token as string;
  const api = (p: string) => `${o.kvMount}/data/${p}`;
  return {
    address: o.address,
    async read(p) {
      const r = await call(o.address, 'GET', api(p), token);
      if (r.status === 404) throw failure(ErrorType.SecretMissing, `secret ${o.kvMount}/${p} does not exist in Vault at ${o.address} (migration.secrets)`);
      if (r.status === 403) throw failure(ErrorType.VaultAuthFailed, `the migration policy does not grant read on ${o.kvMount}/${p} (Vault at ${o.address})`);
      if (UNAVAILABLE_STATUS.has(r.status)) throw failure(ErrorType.VaultUnavailable, `Vault at ${o.address} answered HTTP ${r.status} reading ${o.kvMount}/${p}`);
      if (r.status !== 200 || !r.json?.data?.data) throw failure(ErrorType.VaultRequestRejected, `reading ${o.kvMount}/${p} at ${o.address}: HTTP ${r.status}`);
      return { data: r.json.data.data as Record<string, unknown>, version: Number(r.json.data.metadata?.version ?? 0) };
    },
    async capabilities(paths) {
      const r = await call(o.address, 'POST', 'sys/capabilities-self', token, { paths: paths.map(api) });
      if (r.status !== 200) throw failure(ErrorType.VaultRequestRejected, `capabilities-self at ${o.address}: HTTP ${r.status}`);
      return Object.fromEntries(paths.map((p) => [p, (r.json[api(p)] ?? r.json.data?.[api(p)] ?? []) as string[]]));
    },
    async health() {
      const r = await call(o.address, 'GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200');
      return { initialized: !!r.json.initialized, sealed: !!r.json.sealed, standby: !!r.json.standby };
    },
    async close() {
      await call(o.address, 'POST', 'auth/token/revoke-self', token).catch(() => undefined);
    },
  };
}
