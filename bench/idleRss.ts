// `node lib/bench/idleRss.js [--roles workflows,backup,restore,notify,migration,all] [--settle 8]`:
// the resident memory of an idle worker process per role. Each role runs as `npm run worker` does
// (lib/workers/main.js) against the shared stack's Temporal with the stack config, on a task queue
// of its own and free listener ports; once it logs "worker starting" and has polled for --settle
// seconds, VmRSS is sampled three times 1 s apart (the median is reported) and VmHWM read, then it
// is stopped with SIGTERM. Prints JSON lines and writes --out.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { freePort } from '../infra/vault/stagingVault';
import { PROJECT_ROOT, stackDir } from '../stack/stack';
import { MiB, procMemory } from './measure';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function idle(role: string, settleMs: number): Promise<{ role: string; rssMiB?: number; hwmMiB?: number; startupSeconds?: number; error?: string }> {
  const env = {
    ...process.env,
    VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'),
    VAULTDR_TASK_QUEUE: `vault-dr-idle-rss-${process.pid}-${role}`,
    VAULTDR_CODEC_LISTEN: `127.0.0.1:${await freePort()}`,
    VAULTDR_SHARE_INTAKE_LISTEN: `127.0.0.1:${await freePort()}`,
    VAULTDR_METRICS_LISTEN: `127.0.0.1:${await freePort()}`,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...(role === 'all' ? {} : { VAULTDR_WORKER_ROLES: role }),
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'lib', 'workers', 'main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const deadline = Date.now() + 90_000;
    while (!/worker starting/.test(out)) {
      if (child.exitCode !== null) return { role, error: `exited during start-up: ${out.trim().split('\n').slice(-2).join(' | ').slice(0, 300)}` };
      if (Date.now() > deadline) return { role, error: 'did not start within 90 s' };
      await sleep(200);
    }
    const startupSeconds = (performance.now() - t0) / 1000;
    await sleep(settleMs);
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      samples.push(procMemory(child.pid!, 'VmRSS') ?? 0);
      await sleep(1000);
    }
    samples.sort((a, b) => a - b);
    return { role, rssMiB: +(samples[1]! / MiB).toFixed(1), hwmMiB: +((procMemory(child.pid!, 'VmHWM') ?? 0) / MiB).toFixed(1), startupSeconds: +startupSeconds.toFixed(1) };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

async function main() {
  const o = new Command().option('--roles <list>', 'roles, or all for one process with every role', 'workflows,backup,restore,notify,migration,all').option('--settle <s>', 'seconds idle before sampling', '8').option('--out <file>').parse(process.argv).opts<{ roles: string; settle: string; out?: string }>();
  const results = [];
  for (const role of o.roles.split(',')) {
    const r = await idle(role.trim(), Number(o.settle) * 1000);
    console.log(JSON.stringify(r));
    results.push(r);
  }
  if (o.out) fs.writeFileSync(o.out, JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack);
    process.exit(1);
  },
);
