// `npm run bench:ha [-- --rounds 20 --faults kill-leader,stop-node,planned]`: the Vault failover
// gap through HAProxy, per fault, over many rounds on the HA harness (npm run ha:up), with the
// floor in the same rounds: a second client writing straight to the surviving nodes. Every
// acknowledged write is read back each round. Results: bench/results/ha-latest.{json,md}.
// Timings are reported, never asserted (test/ha*.test.ts check behaviour only).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import type { HaFault } from '../infra/ha/driver';
import { runRound, summarize, type RoundMeasurement } from '../infra/ha/round';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { HAPROXY_VAULT_ADDR, VAULT_CHECK, vaultRouting } from '../stack/ha/haproxy';
import { haUp } from '../stack/ha/index';
import { harnessVaultEnv, PERFORMANCE_MULTIPLIER, VAULT_NODES, nodeAddr } from '../stack/ha/vault';
import { PROJECT_ROOT } from '../stack/stack';
import { toolPaths } from '../stack/tools';
import { execFileSync } from 'node:child_process';

const log = (l: string) => process.stdout.write(`bench:ha: ${l}\n`);

async function main(): Promise<void> {
  const cmd = new Command('bench:ha')
    .option('--rounds <n>', 'rounds per fault', '20')
    .option('--faults <list>', 'comma-separated faults', 'kill-leader,stop-node,planned')
    .option('--name <name>', 'result file stem in bench/results', 'ha-latest')
    .parse(process.argv);
  const o = cmd.opts<{ rounds: string; faults: string; name: string }>();
  const rounds = Number(o.rounds);
  const faults = o.faults.split(',') as HaFault[];
  log('bringing the HA harness up (idempotent)');
  await haUp();
  const env = harnessVaultEnv(HAPROXY_VAULT_ADDR);
  const driver = new VaultHaDriver(env);
  const results: (RoundMeasurement & { fault: HaFault; healMs: number })[] = [];
  const runId = new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15);
  let rr = 0;
  for (const fault of faults) {
    for (let i = 1; i <= rounds; i++) {
      const round = `bench-${runId}-${fault}-${i}`;
      const m = await runRound(driver, fault, {
        round,
        direct: (seq, exclude) => {
          const targets = env.nodes.filter((n) => n.name !== exclude);
          const node = targets[rr++ % targets.length]!;
          return driver.writeVia(node.addr, `${round}-direct`, seq);
        },
      });
      const t = Date.now();
      await driver.heal(m.injected, 120_000);
      const healMs = Date.now() - t;
      results.push({ ...m, fault, healMs });
      log(`${fault} #${i}: node ${m.injected.node}, gap ${m.gapMs ?? 'NONE'} ms via HAProxy, ${m.directGapMs ?? 'NONE'} ms direct; ${m.writesAcked} acked, ${m.missing.length} missing; healed in ${healMs} ms`);
      if (m.missing.length) log(`  LOST ACKNOWLEDGED WRITES: ${m.missing.join(',')}`);
    }
  }
  await driver.close();
  const table = faults.map((fault) => {
    const rs = results.filter((r) => r.fault === fault);
    return {
      fault,
      rounds: rs.length,
      haproxy: summarize(rs.flatMap((r) => (r.gapMs === undefined ? [] : [r.gapMs]))),
      direct: summarize(rs.flatMap((r) => (r.directGapMs === undefined ? [] : [r.directGapMs]))),
      heal: summarize(rs.map((r) => r.healMs)),
      noWriteWithinLimit: rs.filter((r) => r.gapMs === undefined).length,
      lostWrites: rs.reduce((a, r) => a + r.missing.length, 0),
      ackedWrites: rs.reduce((a, r) => a + r.writesAcked, 0),
      clientErrors: [...new Set(rs.flatMap((r) => r.clientErrors))].slice(0, 4),
    };
  });
  const version = execFileSync(toolPaths().bao, ['version']).toString().trim();
  const out = {
    at: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    openbao: version,
    nodes: VAULT_NODES.map((n) => nodeAddr(n)),
    performanceMultiplier: PERFORMANCE_MULTIPLIER,
    haproxyRouting: vaultRouting(),
    haproxyChecks: `inter 5s fastinter 1s downinter ${VAULT_CHECK.downinter} fall 2 rise ${VAULT_CHECK.rise} on-marked-down shutdown-sessions, timeout check 1s`,
    table,
    rounds: results,
  };
  const dir = path.join(PROJECT_ROOT, 'bench', 'results');
  fs.writeFileSync(path.join(dir, `${o.name}.json`), JSON.stringify(out, null, 2) + '\n');
  const s = (x: { p50: number; p95: number; max: number; n: number }) => (x.n ? `${(x.p50 / 1000).toFixed(2)} / ${(x.p95 / 1000).toFixed(2)} / ${(x.max / 1000).toFixed(2)}` : '—');
  const md = `# vault-dr HA failover benchmark (Vault) — ${out.at}

Machine: ${out.machine}. ${version}; three nodes on loopback, \`performance_multiplier = ${PERFORMANCE_MULTIPLIER}\`.
HAProxy routing: **${out.haproxyRouting}** (\`GET /v1/sys/health\`, expect 200), ${out.haproxyChecks}.

Gap = time from the fault to the first acknowledged KV write that started after it (client timeout 2 s,
50 ms pause after a failed write). "direct" is the floor measured in the same rounds: a second client
writing straight to the surviving nodes, round-robin (a standby forwards to the new leader).
Every acknowledged write was read back through HAProxy after each round.

| fault | rounds | via HAProxy p50 / p95 / max s | direct to survivors p50 / p95 / max s | heal + full health p50 / max s | acked writes | lost | rounds without a write |
|---|---:|---:|---:|---:|---:|---:|---:|
${table.map((t) => `| ${t.fault} | ${t.rounds} | ${s(t.haproxy)} | ${s(t.direct)} | ${(t.heal.p50 / 1000).toFixed(1)} / ${(t.heal.max / 1000).toFixed(1)} | ${t.ackedWrites} | ${t.lostWrites} | ${t.noWriteWithinLimit} |`).join('\n')}

What clients saw during the gap (first distinct errors): ${table.map((t) => `**${t.fault}**: ${t.clientErrors.map((e) => `\`${e.replace(/\|/g, '/')}\``).join(', ') || '—'}`).join('; ')}.
`;
  fs.writeFileSync(path.join(dir, `${o.name}.md`), md);
  log(`wrote bench/results/${o.name}.{json,md}`);
  process.stdout.write(md);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench:ha: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
