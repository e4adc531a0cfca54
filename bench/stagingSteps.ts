// `node lib/bench/stagingSteps.js [--rounds 3] [--workflows 2] [--out bench/results/staging-steps]`:
// where a staging restore validation's RTO goes (issue 17, goal 3).
// 1. Server level, side by side in one run: the staging server's phases as restoreVault's activities
//    drive them (startStaging: spawn + init + unseal + active; snapshot-force of a real snapshot of
//    the stack's OpenBao; restartStaging; unsealWithShares with the source cluster's shares until
//    active; one KV read) with raft performance_multiplier 5 (OpenBao's default, what staging used
//    before) against 1 (what it uses now), rounds alternating which goes first.
// 2. Workflow level: restoreVault {} (staging) runs on an in-process worker; each step's time is
//    read from the run's history (activity scheduled → completed), and the RTO the run recorded.
// Runs against the shared local stack (VAULTDR_STACK_DIR). Nothing is asserted; it prints and writes
// <out>.json and <out>.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import { loadConfig, type Config } from '../infra/config';
import { restartStaging, stagingApi, stagingToken, startStaging, stopStaging, unsealWithShares } from '../infra/vault/stagingVault';
import { stackDir } from '../stack/stack';
import { withWorker } from '../test/helpers/worker';

const ms = (t0: number) => Math.round(performance.now() - t0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface ServerRound {
  multiplier: number;
  startMs: number;
  snapshotForceMs: number;
  restartMs: number;
  unsealMs: number;
  readMs: number;
  totalMs: number;
}

async function serverRound(cfg: Config, snapshot: Buffer, rootToken: string, shares: string[], multiplier: number, n: number): Promise<ServerRound> {
  const root = cfg.restore.stagingDir!;
  const stagingId = `bench-steps-${process.pid}-${n}-pm${multiplier}`;
  const t0 = performance.now();
  try {
    let t = performance.now();
    const info = await startStaging({ root, stagingId, baoBinary: cfg.restore.baoBinary, performanceMultiplier: multiplier });
    const startMs = ms(t);
    t = performance.now();
    const res = await fetch(`${info.address}/v1/sys/storage/raft/snapshot-force`, { method: 'POST', headers: { 'X-Vault-Token': stagingToken(info), 'Content-Type': 'application/octet-stream' }, body: snapshot });
    if (res.status !== 204 && res.status !== 200) throw new Error(`snapshot-force: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    const snapshotForceMs = ms(t);
    t = performance.now();
    const restarted = await restartStaging(info, cfg.restore.baoBinary);
    const restartMs = ms(t);
    t = performance.now();
    await unsealWithShares(restarted.address, shares);
    const unsealMs = ms(t);
    t = performance.now();
    const r = await stagingApi(restarted.address, 'GET', 'sys/mounts', rootToken);
    if (r.status !== 200) throw new Error(`read after unseal: HTTP ${r.status}`);
    const readMs = ms(t);
    return { multiplier, startMs, snapshotForceMs, restartMs, unsealMs, readMs, totalMs: ms(t0) };
  } finally {
    await stopStaging(root, stagingId);
  }
}

/** Each activity's time in one restoreVault run, from its history (scheduled → completed, retries included). */
async function stepTimes(client: Client, workflowId: string): Promise<Record<string, number>> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, { type: string; at: number }>();
  const out: Record<string, number> = {};
  const at = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.round((e.eventTime?.nanos ?? 0) / 1e6);
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at: at(e) });
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const s = scheduled.get(String(done.scheduledEventId));
      if (s) out[s.type] = (out[s.type] ?? 0) + at(e) - s.at;
    }
  }
  return out;
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--rounds <n>', 'server-level rounds per setting', '3')
    .option('--workflows <n>', 'restoreVault runs', '2')
    .option('--out <prefix>', 'output files (without extension)', path.join('bench', 'results', 'staging-steps'))
    .parse(process.argv)
    .opts<{ rounds: string; workflows: string; out: string }>();
  const cfg = loadConfig({ file: path.join(stackDir(), 'vaultdr.json') });
  const init = JSON.parse(fs.readFileSync(cfg.restore.unsealSharesFile!, 'utf8')) as { root_token: string; keys_base64?: string[]; unseal_keys_b64?: string[] };
  const shares = init.keys_base64 ?? init.unseal_keys_b64 ?? [];
  const snapRes = await fetch(`${cfg.vault.address}/v1/sys/storage/raft/snapshot`, { headers: { 'X-Vault-Token': init.root_token } });
  if (snapRes.status !== 200) throw new Error(`snapshot of the stack's OpenBao: HTTP ${snapRes.status}`);
  const snapshot = Buffer.from(await snapRes.arrayBuffer());
  console.log(`snapshot of ${cfg.vault.address}: ${(snapshot.length / 1024).toFixed(0)} KiB`);

  const server: ServerRound[] = [];
  for (let i = 0; i < Number(o.rounds); i++) {
    for (const m of i % 2 ? [1, 5] : [5, 1]) {
      const r = await serverRound(cfg, snapshot, init.root_token, shares, m, i);
      server.push(r);
      console.log(JSON.stringify(r));
    }
  }

  const runs: { workflowId: string; rtoSeconds?: number; steps: Record<string, number> }[] = [];
  const queue = `vault-dr-bench-steps-${process.pid}`;
  const wcfg: Config = { ...cfg, temporal: { ...cfg.temporal, taskQueue: queue } };
  const client = await connectClient(wcfg);
  try {
    await withWorker(wcfg, async () => {
      for (let i = 0; i < Number(o.workflows); i++) {
        const workflowId = `bench-staging-steps-${Date.now()}`;
        const r = (await (await client.workflow.start('restoreVault', { taskQueue: queue, workflowId, args: [{ reason: 'bench: staging RTO by step' }] })).result()) as { rtoSeconds?: number };
        const steps = await stepTimes(client, workflowId);
        runs.push({ workflowId, rtoSeconds: r.rtoSeconds, steps });
        console.log(JSON.stringify(runs.at(-1)));
      }
    });
  } finally {
    await client.connection.close();
  }

  const by = (m: number) => server.filter((r) => r.multiplier === m);
  const keys = ['startMs', 'snapshotForceMs', 'restartMs', 'unsealMs', 'readMs', 'totalMs'] as const;
  const md = [
    `# Staging restore validation: RTO by step (${new Date().toISOString()})`,
    '',
    `Snapshot: the shared stack's OpenBao, ${(snapshot.length / 1024).toFixed(0)} KiB. ${o.rounds} rounds per setting, alternating order; medians (ms).`,
    '',
    '| staging server | start (spawn, init, unseal, active) | snapshot-force | restart | unseal until active | read | total |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...[5, 1].map((m) => `| ${m === 5 ? 'before: raft performance_multiplier 5 (OpenBao default)' : 'now: performance_multiplier 1'} | ${keys.map((k) => median(by(m).map((r) => r[k]))).join(' | ')} |`),
    '',
    'restoreVault (staging) on an in-process worker, step times from history (ms):',
    '',
    `| run | RTO s | ${Object.keys(runs[0]?.steps ?? {}).join(' | ')} |`,
    `|---|---:|${Object.keys(runs[0]?.steps ?? {}).map(() => '---:').join('|')}|`,
    ...runs.map((r, i) => `| ${i + 1} | ${r.rtoSeconds ?? '-'} | ${Object.keys(runs[0]!.steps).map((k) => r.steps[k] ?? '-').join(' | ')} |`),
    '',
  ].join('\n');
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(`${o.out}.json`, JSON.stringify({ at: new Date().toISOString(), snapshotBytes: snapshot.length, server, runs }, null, 2));
  fs.writeFileSync(`${o.out}.md`, md);
  console.log(md);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
