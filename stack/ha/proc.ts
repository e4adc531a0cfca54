// Process bookkeeping for the whole HA harness (OpenBao nodes, audit shippers, etcd, Patroni,
// HAProxy): a detached server per pid file under $VAULTDR_HA_DIR, started once (idempotent), its
// pid checked against /proc so a recycled pid is never signalled, optionally as another user
// (Patroni runs as `postgres` when we are root). The drills' drivers use the same pid files to
// inject faults (SIGKILL, SIGSTOP).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

let configuredDir: string | undefined;

/** A worker points the harness code at the dir from its config (ha.harnessDir) instead of the environment. */
export function useHaDir(dir: string): void {
  configuredDir = path.resolve(dir);
}

/** Where the harness keeps state and logs: ha.harnessDir, else $VAULTDR_HA_DIR, default <project>/.stack/ha. */
export function haDir(): string {
  return configuredDir ?? path.resolve(process.env.VAULTDR_HA_DIR ?? path.join(PROJECT_ROOT, '.stack', 'ha'));
}

export class HaStackError extends Error {
  override name = 'HaStackError';
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Proc {
  name: string;
  /** Substring of /proc/<pid>/cmdline: guards against a recycled pid. */
  binary: string;
  dir: string;
  command(): { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; uid?: number; gid?: number };
  /** "Up" for start-up purposes (a sealed OpenBao is up). */
  up(): Promise<boolean>;
  startTimeoutMs: number;
  /** How long a SIGTERM may take before SIGKILL (default 15 s; a PostgreSQL primary's Patroni needs longer). */
  stopTimeoutMs?: number;
}

export const pidFile = (p: Pick<Proc, 'name' | 'dir'>) => path.join(p.dir, `${p.name}.pid`);
export const logFile = (p: Pick<Proc, 'name' | 'dir'>) => path.join(p.dir, `${p.name}.log`);

export function runningPid(p: Pick<Proc, 'name' | 'dir' | 'binary'>): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile(p), 'utf8').trim());
    process.kill(pid, 0);
    // A zombie (killed, not yet reaped by its parent) is not running.
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(p.binary) && procState(pid) !== 'Z' ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** 'T' for a SIGSTOPped process, 'R'/'S' running, undefined when gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return procState(pid) !== 'Z';
  } catch {
    return false;
  }
}

export function logTail(p: Pick<Proc, 'name' | 'dir'>, lines = 8): string {
  try {
    return fs.readFileSync(logFile(p), 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startProc(p: Proc): Promise<'started' | 'already running'> {
  fs.mkdirSync(p.dir, { recursive: true });
  const existing = runningPid(p);
  if (existing !== undefined) {
    // A stopped (SIGSTOP) process left by an interrupted drill is continued, not duplicated.
    if (procState(existing) === 'T') process.kill(existing, 'SIGCONT');
    if (await p.up()) return 'already running';
  } else if (await p.up()) {
    throw new HaStackError(`${p.name}: its port is already served by a process this harness did not start; stop it or change the port`);
  }
  let pid = runningPid(p);
  if (pid === undefined) {
    const { cmd, args, env, uid, gid } = p.command();
    const out = fs.openSync(logFile(p), 'a');
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], cwd: p.dir, env: env ?? process.env, ...(uid !== undefined ? { uid, gid } : {}) });
    fs.closeSync(out);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new HaStackError(`${p.name}: cannot start ${cmd}: ${err.message}`)));
    });
    pid = child.pid!;
    child.unref();
    fs.writeFileSync(pidFile(p), String(pid));
  }
  const deadline = Date.now() + p.startTimeoutMs;
  while (Date.now() < deadline) {
    // Liveness by pid, not by command line: a wrapper that execs the real server (the PyPI `bao`)
    // has an empty or changing cmdline for a moment, which is not an exit.
    if (!alive(pid)) throw new HaStackError(`${p.name}: exited during start-up; last log lines (${logFile(p)}):\n${logTail(p)}`);
    if (await p.up()) return 'started';
    await sleep(200);
  }
  throw new HaStackError(`${p.name}: not up after ${p.startTimeoutMs / 1000}s; last log lines (${logFile(p)}):\n${logTail(p)}`);
}

export async function stopProc(p: Pick<Proc, 'name' | 'dir' | 'binary' | 'stopTimeoutMs'>, signal: NodeJS.Signals = 'SIGTERM'): Promise<'stopped' | 'not running'> {
  const pid = runningPid(p);
  if (pid === undefined) {
    fs.rmSync(pidFile(p), { force: true });
    return 'not running';
  }
  if (procState(pid) === 'T') process.kill(pid, 'SIGCONT');
  process.kill(pid, signal);
  const deadline = Date.now() + (p.stopTimeoutMs ?? 15_000);
  while (Date.now() < deadline && runningPid(p) !== undefined) await sleep(100);
  if (runningPid(p) !== undefined) process.kill(pid, 'SIGKILL');
  while (runningPid(p) !== undefined) await sleep(50);
  fs.rmSync(pidFile(p), { force: true });
  return 'stopped';
}

export async function httpJson(url: string, init: RequestInit = {}, timeoutMs = 2000): Promise<{ status: number; json: any } | undefined> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { text };
    }
    return { status: res.status, json };
  } catch {
    return undefined;
  }
}

export function writeSecret(file: string, content: string): void {
  fs.writeFileSync(file, content, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}
