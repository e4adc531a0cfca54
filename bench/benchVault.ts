// The bench's own throwaway OpenBao: a raft node on free loopback ports (the same start-up code as
// restore staging, infra/vault/stagingVault.ts), bootstrapped like the local stack (KV v2 at secret/,
// the worker policy and AppRole), and filled with N KV v2 secrets through a bounded pool of
// concurrent HTTP writes. Never the shared stack's OpenBao.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../stack/stack';
import { startStaging, stagingApi, stagingToken, stopStaging, type StagingInfo } from '../infra/vault/stagingVault';

export interface BenchVault {
  info: StagingInfo;
  address: string;
  /** Root token file of the throwaway server (0600, inside the bench work dir). */
  tokenFile: string;
  roleIdFile: string;
  secretIdFile: string;
  stop(): Promise<void>;
}

async function call(address: string, method: string, p: string, token: string, body?: unknown): Promise<any> {
  const r = await stagingApi(address, method, p, token, body);
  if (r.status >= 400) throw new Error(`bench OpenBao: ${method} /v1/${p}: HTTP ${r.status}: ${(r.json.errors ?? []).join('; ')}`);
  return r.json;
}

function writeSecret(file: string, content: string): void {
  fs.writeFileSync(file, content, { mode: 0o600 });
}

export async function startBenchVault(opts: { workDir: string; baoBinary: string }): Promise<BenchVault> {
  const root = path.join(opts.workDir, 'openbao');
  const info = await startStaging({ root, stagingId: 'bench', baoBinary: opts.baoBinary });
  const token = stagingToken(info);
  const address = info.address;
  const tokenFile = path.join(opts.workDir, 'bao-root-token');
  writeSecret(tokenFile, token + '\n');
  await call(address, 'POST', 'sys/mounts/secret', token, { type: 'kv', options: { version: '2' } });
  const policy = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'openbao', 'policies', 'vaultdr-worker.hcl'), 'utf8');
  await call(address, 'PUT', 'sys/policies/acl/vaultdr-worker', token, { policy });
  await call(address, 'POST', 'sys/auth/approle', token, { type: 'approle' });
  await call(address, 'POST', 'auth/approle/role/vaultdr-worker', token, { token_policies: ['vaultdr-worker'], token_ttl: '1h', token_max_ttl: '4h', secret_id_ttl: '0' });
  const roleIdFile = path.join(opts.workDir, 'worker-role-id');
  const secretIdFile = path.join(opts.workDir, 'worker-secret-id');
  writeSecret(roleIdFile, (await call(address, 'GET', 'auth/approle/role/vaultdr-worker/role-id', token)).data.role_id + '\n');
  writeSecret(secretIdFile, (await call(address, 'POST', 'auth/approle/role/vaultdr-worker/secret-id', token, {})).data.secret_id + '\n');
  return { info, address, tokenFile, roleIdFile, secretIdFile, stop: async () => void (await stopStaging(root, 'bench')) };
}

export interface PopulateReport {
  from: number;
  to: number;
  written: number;
  seconds: number;
  writesPerSecond: number;
  concurrency: number;
  retries: number;
}

/** Secret i lives at secret/bench/f<i mod 100>/s<i>: a hundred folders, like a real tree has. */
export function benchSecretPath(i: number): string {
  return `bench/f${String(i % 100).padStart(2, '0')}/s${String(i).padStart(7, '0')}`;
}

/**
 * Writes secrets [from, to) with `concurrency` requests in flight at most. Each secret is a small
 * record with a random 32-byte password, like an application credential.
 */
export async function populate(vault: BenchVault, from: number, to: number, concurrency = 32): Promise<PopulateReport> {
  const token = fs.readFileSync(vault.tokenFile, 'utf8').trim();
  let next = from;
  let retries = 0;
  const t0 = performance.now();
  const writeOne = async (i: number) => {
    const body = JSON.stringify({ data: { username: `svc-${i}`, password: crypto.randomBytes(32).toString('base64url'), url: `postgres://db-${i % 17}.internal:5432/app${i % 5}` } });
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${vault.address}/v1/secret/data/${benchSecretPath(i)}`, { method: 'POST', headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' }, body, signal: AbortSignal.timeout(30_000) }).catch((err: Error) => err);
      if (!(res instanceof Error) && res.status < 300) {
        await res.arrayBuffer();
        return;
      }
      // A busy raft node answers 429/5xx now and then under a burst; retry a few times.
      if (attempt >= 5) throw new Error(`populate: write ${i} failed: ${res instanceof Error ? res.message : `HTTP ${res.status}: ${await res.text()}`}`);
      if (!(res instanceof Error)) await res.arrayBuffer();
      retries++;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  };
  const lanes = Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < to; i = next++) await writeOne(i);
  });
  await Promise.all(lanes);
  const seconds = (performance.now() - t0) / 1000;
  return { from, to, written: to - from, seconds, writesPerSecond: (to - from) / seconds, concurrency, retries };
}
