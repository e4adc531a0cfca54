// Test support: a throwaway real OpenBao server (the stack's `bao` binary) on free loopback ports,
// optionally with a TLS listener signed by a CA made for the test with openssl. Initialised with one
// share and unsealed; its data lives in a temp dir removed by stop(). Tests that must seal a server
// or revoke tokens use this one, never the shared stack's.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Agent, fetch } from 'undici';
import { freePort } from '../../infra/vault/stagingVault';
import { raftServerHcl } from '../../infra/vault/serverConfig';

export const BAO_BINARY = process.env.VAULTDR_BAO_BINARY ?? path.join(os.homedir(), '.cache', 'vault-dr', 'venv', 'bin', 'bao');

export interface ThrowawayBao {
  address: string;
  rootToken: string;
  unsealKey: string;
  /** CA certificate (PEM file) when started with TLS. */
  caFile?: string;
  dir: string;
  /** Root-token API call (JSON in, JSON out). */
  api(method: string, p: string, body?: unknown): Promise<{ status: number; json: any }>;
  stop(): Promise<void>;
}

function makeTlsFiles(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const f = (n: string) => path.join(dir, n);
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=vault-dr test CA');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return { caFile: f('ca.pem'), certFile: f('server.pem'), keyFile: f('server.key') };
}

export async function startThrowawayBao(opts: { tls?: boolean } = {}): Promise<ThrowawayBao> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-bao-'));
  const [port, clusterPort] = [await freePort(), await freePort()];
  fs.mkdirSync(path.join(dir, 'raft'));
  const tls = opts.tls ? makeTlsFiles(dir) : undefined;
  const scheme = tls ? 'https' : 'http';
  const address = `${scheme}://127.0.0.1:${port}`;
  fs.writeFileSync(path.join(dir, 'bao.hcl'), raftServerHcl({ apiPort: port, clusterPort, raftDir: path.join(dir, 'raft'), nodeId: 'throwaway', tls }));
  const log = fs.openSync(path.join(dir, 'bao.log'), 'a');
  const child: ChildProcess = spawn(BAO_BINARY, ['server', `-config=${path.join(dir, 'bao.hcl')}`], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const agent = new Agent({ connect: tls ? { ca: fs.readFileSync(tls.caFile) } : undefined });
  let rootToken = '';
  const call = async (method: string, p: string, body?: unknown, token = rootToken) => {
    const res = await fetch(`${address}/v1/${p}`, {
      method,
      headers: { ...(token ? { 'X-Vault-Token': token } : {}), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: agent,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as any) : {} };
  };
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await agent.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const h = await call('GET', 'sys/seal-status').catch(() => undefined);
      if (h?.status === 200) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`throwaway bao did not start: ${fs.readFileSync(path.join(dir, 'bao.log'), 'utf8').slice(-500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const init = await call('POST', 'sys/init', { secret_shares: 1, secret_threshold: 1 });
    rootToken = init.json.root_token as string;
    const unsealKey = init.json.keys_base64[0] as string;
    await call('POST', 'sys/unseal', { key: unsealKey });
    for (;;) {
      const h = await call('GET', 'sys/health');
      if (h.status === 200) break;
      if (Date.now() > deadline) throw new Error('throwaway bao not active');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { address, rootToken, unsealKey, caFile: tls?.caFile, dir, api: (m, p, b) => call(m, p, b), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * AppRole on the throwaway server: a role with the given token TTLs and a policy that may read and
 * write secret/ (KV v2), and a secret-id usable `uses` times (0 = unlimited). Writes the role-id
 * and secret-id files into the server's dir and returns their paths.
 */
export async function approleFor(bao: ThrowawayBao, role: { name: string; ttl: string; maxTtl: string; uses?: number }): Promise<{ roleIdFile: string; secretIdFile: string }> {
  const ok = (r: { status: number; json: any }, what: string) => {
    if (r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return r;
  };
  const auths = await bao.api('GET', 'sys/auth');
  if (!auths.json.data?.['approle/']) ok(await bao.api('POST', 'sys/auth/approle', { type: 'approle' }), 'enable approle');
  const mounts = await bao.api('GET', 'sys/mounts');
  if (!mounts.json.data?.['secret/']) ok(await bao.api('POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } }), 'enable kv');
  ok(await bao.api('PUT', 'sys/policies/acl/vaultdr-test', { policy: 'path "secret/*" { capabilities = ["create","read","update","list"] }\npath "sys/storage/raft/snapshot" { capabilities = ["read"] }' }), 'policy');
  ok(await bao.api('POST', `auth/approle/role/${role.name}`, { token_ttl: role.ttl, token_max_ttl: role.maxTtl, token_policies: ['vaultdr-test'], secret_id_num_uses: role.uses ?? 0 }), 'role');
  const roleId = ok(await bao.api('GET', `auth/approle/role/${role.name}/role-id`), 'role-id').json.data.role_id as string;
  const secretId = ok(await bao.api('POST', `auth/approle/role/${role.name}/secret-id`, {}), 'secret-id').json.data.secret_id as string;
  const roleIdFile = path.join(bao.dir, `${role.name}-role-id`);
  const secretIdFile = path.join(bao.dir, `${role.name}-secret-id`);
  fs.writeFileSync(roleIdFile, roleId, { mode: 0o600 });
  fs.writeFileSync(secretIdFile, secretId, { mode: 0o600 });
  return { roleIdFile, secretIdFile };
}
