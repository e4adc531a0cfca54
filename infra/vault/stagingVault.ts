// Throwaway staging OpenBao servers for restore validation: a fresh raft node on free loopback
// ports with its own data folder, initialised and unsealed, torn down afterwards. State lives in
// the folder (pid, address, a 0600 init file), so a retried activity or a restarted worker on the
// same host finds and removes what an earlier attempt started. That state decides where the
// decrypted snapshot and the unseal shares are sent, so the parent folder must be the worker's own:
// created 0700, and on every use refused when it is a symlink, owned by another user, or open to
// group/others. The OpenBao binary always comes from config, never from the state file.
import { raftServerHcl } from './serverConfig';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorType, failure } from '../../common/errors';
import { fetch, type Dispatcher } from 'undici';

export interface StagingInfo {
  stagingId: string;
  address: string;
  pid: number;
  dir: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function stagingRoot(configured?: string): string {
  return configured ?? path.join(os.tmpdir(), 'vault-dr-staging');
}

/** Refuses a staging folder another user could have prepared or can change (non-retryable: a person must fix it). */
function unsafe(root: string, why: string): Error {
  return failure(ErrorType.ConfigInvalid, `staging folder ${root} (restore.stagingDir) ${why}; refusing to use it: remove it or point restore.stagingDir at a folder only this worker's user can use (mode 0700)`);
}

/** Checks the staging parent folder (creating it 0700 when `create` and absent); throws when it is unsafe. */
export function checkStagingRoot(root: string, create = false): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unsafe(root, `cannot be inspected (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    if (!create) return false;
    fs.mkdirSync(path.dirname(root), { recursive: true });
    // Not recursive for the folder itself: EEXIST here means someone raced us to it, and it is checked below.
    try {
      fs.mkdirSync(root, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    st = fs.lstatSync(root);
  }
  if (st.isSymbolicLink()) throw unsafe(root, 'is a symbolic link');
  if (!st.isDirectory()) throw unsafe(root, 'is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw unsafe(root, `is owned by uid ${st.uid}, not by this worker's uid ${uid}`);
  if (st.mode & 0o077) throw unsafe(root, `has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, which lets group or others in (want 0700)`);
  return true;
}

/** A staging id names a folder under the root: no separators, no dot-dot. */
function stagingDir(root: string, stagingId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/.test(stagingId) || stagingId.includes('..')) throw failure(ErrorType.InvalidInput, 'staging id must be letters, digits, dot, dash or underscore');
  return path.join(root, stagingId);
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('bao');
  } catch {
    return false;
  }
}

/** One OpenBao API call; `dispatcher` carries the TLS trust of a production target (vault.caFile). */
async function api(address: string, method: string, p: string, token?: string, body?: unknown, dispatcher?: Dispatcher): Promise<{ status: number; json: any }> {
  const res = await fetch(`${address}/v1/${p}`, {
    method,
    dispatcher,
    headers: { ...(token ? { 'X-Vault-Token': token } : {}), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let json: any = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { raw: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

export function readStaging(root: string, stagingId: string): StagingInfo | undefined {
  if (!checkStagingRoot(root)) return undefined;
  const dir = stagingDir(root, stagingId);
  const file = path.join(dir, 'staging.json');
  if (!fs.existsSync(file)) return undefined;
  let state: { address?: unknown; pid?: unknown };
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof state;
  } catch {
    throw failure(ErrorType.ConfigInvalid, `staging state ${file} is not valid JSON: remove ${dir}`);
  }
  // Only what this worker wrote is taken: a loopback address and a pid; the folder comes from the id.
  if (typeof state.address !== 'string' || !/^http:\/\/127\.0\.0\.1:\d{1,5}$/.test(state.address) || !Number.isInteger(state.pid) || (state.pid as number) <= 0) {
    throw failure(ErrorType.ConfigInvalid, `staging state ${file} is not one this worker wrote (address must be http://127.0.0.1:<port>): remove ${dir}`);
  }
  return { stagingId, address: state.address, pid: state.pid as number, dir };
}

/** The staging server's own root token (valid until a snapshot replaces its data). */
export function stagingToken(info: StagingInfo): string {
  return (JSON.parse(fs.readFileSync(path.join(info.dir, 'init.json'), 'utf8')) as { root_token: string }).root_token;
}

/**
 * `seal`: initialise with this many shares and threshold (a seal drill), and write each share to
 * <dir>/custodian-shares/share-<i>.txt (0600) for the drill's participants to submit; default 1/1.
 */
export async function startStaging(opts: { root: string; stagingId: string; baoBinary: string; seal?: { shares: number; threshold: number }; performanceMultiplier?: number }): Promise<StagingInfo> {
  checkStagingRoot(opts.root, true);
  const existing = readStaging(opts.root, opts.stagingId);
  if (existing && alive(existing.pid)) {
    const h = await api(existing.address, 'GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200').catch(() => undefined);
    if (h?.json.initialized && !h.json.sealed) return { ...existing, baoBinary: opts.baoBinary } as StagingInfo;
  }
  if (existing) await stopStaging(opts.root, opts.stagingId);
  const dir = stagingDir(opts.root, opts.stagingId);
  fs.mkdirSync(path.join(dir, 'raft'), { recursive: true, mode: 0o700 });
  const [apiPort, clusterPort] = [await freePort(), await freePort()];
  const address = `http://127.0.0.1:${apiPort}`;
  fs.writeFileSync(path.join(dir, 'staging.hcl'), raftServerHcl({ apiPort, clusterPort, raftDir: path.join(dir, 'raft'), nodeId: opts.stagingId, performanceMultiplier: opts.performanceMultiplier }));
  const info = await spawnServer({ stagingId: opts.stagingId, address, pid: 0, dir, baoBinary: opts.baoBinary });
  const seal = opts.seal ?? { shares: 1, threshold: 1 };
  const init = await api(address, 'POST', 'sys/init', undefined, { secret_shares: seal.shares, secret_threshold: seal.threshold });
  if (init.status !== 200) throw new Error(`staging init failed: HTTP ${init.status}`);
  const keys = init.json.keys_base64 as string[];
  fs.writeFileSync(path.join(dir, 'init.json'), JSON.stringify({ root_token: init.json.root_token, key: keys[0] }), { mode: 0o600 });
  if (opts.seal) {
    fs.mkdirSync(path.join(dir, 'custodian-shares'), { mode: 0o700 });
    keys.forEach((k, i) => fs.writeFileSync(path.join(dir, 'custodian-shares', `share-${i + 1}.txt`), k + '\n', { mode: 0o600 }));
  }
  for (const key of keys.slice(0, seal.threshold)) await api(address, 'POST', 'sys/unseal', undefined, { key });
  await waitActive(address, 30_000);
  return info;
}

interface StagingState extends StagingInfo {
  baoBinary: string;
}

async function spawnServer(state: StagingState): Promise<StagingInfo> {
  const log = fs.openSync(path.join(state.dir, 'bao.log'), 'a');
  const child = spawn(state.baoBinary, ['server', `-config=${path.join(state.dir, 'staging.hcl')}`], { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start staging OpenBao (${state.baoBinary}): ${err.message}`)));
  });
  let exited = '';
  child.once('exit', (code, signal) => (exited = signal ? `killed by ${signal}` : `exit code ${code}`));
  child.unref();
  const info: StagingState = { ...state, pid: child.pid! };
  // The binary is not part of the state: a restart takes it from config again.
  fs.writeFileSync(path.join(state.dir, 'staging.json'), JSON.stringify({ stagingId: info.stagingId, address: info.address, pid: info.pid, dir: info.dir }), { mode: 0o600 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!alive(info.pid)) throw new Error(`staging OpenBao exited during start-up (${exited || `pid ${info.pid} gone`}): ${fs.readFileSync(path.join(state.dir, 'bao.log'), 'utf8').trim().split('\n').slice(-3).join(' | ')}`);
    const h = await api(info.address, 'GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200').catch(() => undefined);
    if (h?.status === 200) return info;
    if (Date.now() > deadline) throw new Error('staging OpenBao did not answer within 30s');
    await sleep(200);
  }
}

async function killServer(pid: number): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    process.kill(pid, 'SIGTERM');
  }
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/**
 * Restarts staging after a snapshot-force restore: a running node keeps its old seal settings in
 * memory, a restarted one reads the restored cluster's (e.g. 5 shares, threshold 3). The binary is
 * the configured one (`baoBinary`), or the one this process started it with; never the state file's.
 * Most of its time is OpenBao's: after a restore it waits 5 s, then seals itself ("failed to perform
 * key upgrades, sealing"), and only then exits on SIGTERM. Killing it sooner is not safe: a server
 * SIGKILLed right after snapshot-force answered came back with its old seal configuration (measured,
 * bench/stagingSteps.ts).
 */
export async function restartStaging(info: StagingInfo, baoBinary?: string): Promise<StagingInfo> {
  const binary = baoBinary ?? (info as Partial<StagingState>).baoBinary;
  if (!binary) throw new Error('restartStaging: no OpenBao binary given (restore.baoBinary)');
  await killServer(info.pid);
  return spawnServer({ stagingId: info.stagingId, address: info.address, pid: info.pid, dir: info.dir, baoBinary: binary });
}

export async function waitActive(address: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const h = await api(address, 'GET', 'sys/health?standbyok=true&sealedcode=200&uninitcode=200').catch(() => undefined);
    if (h?.json.initialized && !h.json.sealed && !h.json.standby) return;
    if (Date.now() > deadline) throw new Error(`OpenBao at ${address} not active after ${ms / 1000}s`);
    await sleep(250);
  }
}

/** Unseals with shares of the source cluster after a restore; returns the threshold used. */
export async function unsealWithShares(address: string, shares: string[]): Promise<number> {
  const status = (await api(address, 'GET', 'sys/seal-status')).json;
  if (!status.sealed) throw new Error(`OpenBao at ${address} is not sealed: was the snapshot restored?`);
  const threshold = status.t as number;
  if (shares.length < threshold) throw new Error(`restored cluster needs ${threshold} unseal shares, ${shares.length} available`);
  for (const key of shares.slice(0, threshold)) {
    const r = await api(address, 'POST', 'sys/unseal', undefined, { key });
    if (r.status !== 200) throw new Error(`unseal rejected a share: ${(r.json.errors ?? []).join('; ').replace(/[A-Za-z0-9+/=]{20,}/g, '…')}`);
  }
  await waitActive(address, 30_000);
  return threshold;
}

export async function stopStaging(root: string, stagingId: string): Promise<'stopped' | 'absent'> {
  const info = readStaging(root, stagingId);
  const dir = stagingDir(root, stagingId);
  if (!info && !fs.existsSync(dir)) return 'absent';
  if (info) await killServer(info.pid);
  fs.rmSync(dir, { recursive: true, force: true });
  return 'stopped';
}

export { api as stagingApi };
