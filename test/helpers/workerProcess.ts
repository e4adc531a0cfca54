// Test support: a real vault-dr worker PROCESS (lib/workers/main.js, as `npm run worker` runs it),
// for the tests that SIGKILL a worker mid-run and start another. Its listeners get free loopback
// ports; it is ready once every role's Worker logs RUNNING.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { WORKER_ROLES } from '../../common/roles';
import { freePort } from '../../infra/vault/stagingVault';
import { PROJECT_ROOT } from './stack';

export interface WorkerProcess {
  child: ChildProcess;
  /** The custodian share intake's address (host:port) of this process. */
  shareIntakeListen: string;
  /** Everything the process wrote to stdout and stderr so far. */
  log: () => string;
}

/**
 * Starts `node lib/workers/main.js` with the config file `cfgFile` on `taskQueue` and waits (up to
 * 60 s) until all its roles run. The caller SIGKILLs what it started (`killWorkerProcesses`).
 */
export async function spawnWorkerProcess(cfgFile: string, taskQueue: string, name = 'worker'): Promise<WorkerProcess> {
  let log = '';
  const shareIntakeListen = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js')], {
    env: { ...process.env, VAULTDR_CONFIG: cfgFile, VAULTDR_TASK_QUEUE: taskQueue, VAULTDR_CODEC_LISTEN: `127.0.0.1:${await freePort()}`, VAULTDR_METRICS_LISTEN: `127.0.0.1:${await freePort()}`, VAULTDR_SHARE_INTAKE_LISTEN: shareIntakeListen },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 60_000;
  while ((log.match(/state: 'RUNNING'/g) ?? []).length < WORKER_ROLES.length) {
    if (!(Date.now() < deadline && child.exitCode === null)) {
      child.kill('SIGKILL');
      assert.fail(`${name} did not start:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, shareIntakeListen, log: () => log };
}

/** SIGKILLs every started worker process that still runs (a test's cleanup). */
export function killWorkerProcesses(workers: WorkerProcess[]): void {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
}
