// `node lib/bench/inventoryProfile.js [--secrets N] [--keep]`: where the KV inventory's seconds go.
// Starts (or, with --keep, reuses) a throwaway OpenBao under /tmp/vault-dr-inventory-profile filled
// with N secrets (the bench's layout: 100 folders), then times the inventory walk at several
// concurrencies and page sizes, with the OpenBao process's CPU seconds (from /proc) beside the wall
// time, alone and alongside a snapshot stream. Prints one JSON line per measurement.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { startStaging, stagingApi, stagingToken, stopStaging, type StagingInfo } from '../infra/vault/stagingVault';
import { kvInventory, type KvAccess } from '../infra/vault/kvInventory';
import { toolPaths } from '../stack/tools';
import { populate, type BenchVault } from './benchVault';

const ROOT = '/tmp/vault-dr-inventory-profile';

function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks (100/s)
}

async function main() {
  const o = new Command().option('--secrets <n>', 'secrets', '100000').option('--keep', 'keep the server for the next run').option('--runs <n>', 'repetitions per setting', '2').parse(process.argv).opts<{ secrets: string; keep?: boolean; runs: string }>();
  const want = Number(o.secrets);
  fs.mkdirSync(ROOT, { recursive: true, mode: 0o700 });
  const info: StagingInfo = await startStaging({ root: ROOT, stagingId: 'inv', baoBinary: toolPaths().bao });
  const token = stagingToken(info);
  const mounts = await stagingApi(info.address, 'GET', 'sys/mounts', token);
  if (!mounts.json.data?.['secret/']) await stagingApi(info.address, 'POST', 'sys/mounts/secret', token, { type: 'kv', options: { version: '2' } });
  const tokenFile = path.join(ROOT, 'token');
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });
  const vault = { address: info.address, tokenFile } as BenchVault;
  const have = Number(fs.existsSync(path.join(ROOT, 'count')) ? fs.readFileSync(path.join(ROOT, 'count'), 'utf8') : 0);
  if (have < want) {
    const p = await populate(vault, have, want, 32);
    fs.writeFileSync(path.join(ROOT, 'count'), String(want));
    console.log(JSON.stringify({ populated: p }));
  }
  const access: KvAccess = { get: async (p) => stagingApi(info.address, 'GET', p, token).then((r) => ({ status: r.status, body: r.json as unknown })) };
  let requests = 0;
  const counted: KvAccess = { get: (p) => (requests++, access.get(p)) };

  const measure = async (label: string, fn: () => Promise<unknown>) => {
    for (let i = 0; i < Number(o.runs); i++) {
      requests = 0;
      const c0 = cpuSeconds(info.pid);
      const n0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await fn();
      const wall = (performance.now() - t0) / 1000;
      const n = process.cpuUsage(n0);
      console.log(JSON.stringify({ label, wall: +wall.toFixed(3), baoCpu: +(cpuSeconds(info.pid) - c0).toFixed(2), nodeCpu: +((n.user + n.system) / 1e6).toFixed(2), requests, result: r }));
    }
  };

  const leader = async () => (await stagingApi(info.address, 'GET', 'sys/leader', token)).json as { raft_committed_index?: number; raft_applied_index?: number };
  console.log(JSON.stringify({ leaderBefore: await leader() }));
  for (const c of [1, 2, 4, 8, 16]) await measure(`inventory concurrency ${c}`, () => kvInventory('secret', counted, c));
  console.log(JSON.stringify({ leaderAfter: await leader() }));
  // One page of one folder (1000 keys) and a page of 100 keys: is the cost per key?
  await measure('one page of 1000 keys', () => counted.get('secret/detailed-metadata/bench/f00/?list=true&limit=1000').then((r) => (r.body as { data: { keys: string[] } }).data.keys.length));
  await measure('one page of 100 keys', () => counted.get('secret/detailed-metadata/bench/f00/?list=true&limit=100').then((r) => (r.body as { data: { keys: string[] } }).data.keys.length));
  await measure('plain LIST of one folder (keys only)', () => counted.get('secret/metadata/bench/f00/?list=true').then((r) => (r.body as { data: { keys: string[] } }).data.keys.length));
  // The inventory alongside a snapshot stream read to the end (what the after-pass competes with).
  const snapshot = async () => {
    const res = await fetch(`${info.address}/v1/sys/storage/raft/snapshot`, { headers: { 'X-Vault-Token': token } });
    let bytes = 0;
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) bytes += c.length;
    return bytes;
  };
  await measure('snapshot alone', snapshot);
  await measure('snapshot + inventory concurrency 8', () => Promise.all([snapshot(), kvInventory('secret', counted, 8)]));
  if (!o.keep) await stopStaging(ROOT, 'inv');
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack);
    process.exit(1);
  },
);
