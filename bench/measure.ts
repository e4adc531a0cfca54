// Measuring helpers for `npm run bench`: wall clocks, peak resident memory from /proc, and a
// child-process runner that samples the child's VmHWM while it runs (so tools we do not control,
// such as `bao` and `age`, get a peak RSS too).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export const MiB = 1024 * 1024;

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM), or undefined once the process is gone. */
export function procMemory(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface ChildRun {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** Highest VmHWM seen while polling (every 50 ms); the last samples before exit are kept. */
  peakRssBytes: number;
}

export class ChildFailed extends Error {
  override name = 'ChildFailed';
}

/** Runs a command to completion, timing it and polling its peak RSS. Fails on a non-zero exit. */
export async function runMeasured(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; label: string }): Promise<ChildRun> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peak = 0;
  const sample = () => {
    const hwm = child.pid ? procMemory(child.pid, 'VmHWM') : undefined;
    if (hwm && hwm > peak) peak = hwm;
  };
  const timer = setInterval(sample, 50);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  }).finally(() => clearInterval(timer));
  const ms = performance.now() - t0;
  if (code !== 0) throw new ChildFailed(`${opts.label}: \`${cmd} ${args.join(' ')}\` exited with ${code}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return { ms, code, stdout, stderr, peakRssBytes: peak };
}

/** Samples a long-running process (the worker) until stopped; returns its peak VmHWM/VmRSS. */
export function watchMemory(pid: number, everyMs = 100): { startRssBytes: number; stop: () => { peakRssBytes: number; lastRssBytes: number } } {
  let peak = 0;
  let last = 0;
  const startRssBytes = procMemory(pid, 'VmRSS') ?? 0;
  const sample = () => {
    const hwm = procMemory(pid, 'VmHWM');
    const rss = procMemory(pid, 'VmRSS');
    if (hwm && hwm > peak) peak = hwm;
    if (rss) last = rss;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    startRssBytes,
    stop: () => {
      sample();
      clearInterval(timer);
      return { peakRssBytes: peak, lastRssBytes: last };
    },
  };
}

export const mbps = (bytes: number, ms: number) => (ms > 0 ? bytes / 1e6 / (ms / 1000) : 0);
