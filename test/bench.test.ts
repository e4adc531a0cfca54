// `npm run bench` as an operator runs it, shrunk to a smoke run: a throwaway OpenBao with 300
// secrets and a 16 MiB synthetic stream, every method measured, results written as JSON, Markdown
// and SVG. Checks that every row is there with positive numbers, not what the numbers are.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stackDir } from '../stack/stack';
import { runMeasured } from '../bench/measure';
import type { BenchResults, MethodId } from '../bench/report';
import { ensureStack, PROJECT_ROOT } from './helpers/stack';

describe('npm run bench (smoke, real stack)', function () {
  this.timeout(180_000);
  before(() => ensureStack());

  it('measures the baselines and ours on a small OpenBao and a 16 MiB stream, and writes JSON, Markdown and SVG', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vault-dr-bench-test-'));
    try {
      const args = [path.join(PROJECT_ROOT, 'lib', 'bench', 'run.js'), '--sizes', '300', '--stream-gib', String(16 / 1024), '--out', out, '--name', 'smoke', '--bucket', `vault-dr-bench-t${process.pid}`];
      await runMeasured(process.execPath, args, { label: 'bench', env: { ...process.env, VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json') } });
      const r = JSON.parse(fs.readFileSync(path.join(out, 'smoke.json'), 'utf8')) as BenchResults;
      assert.deepEqual(r.workloads.map((w) => w.name), ['openbao-300', 'synthetic-16MiB']);
      assert.equal(r.workloads[0]!.population?.written, 300);
      for (const w of r.workloads) assert.ok(w.snapshotBytes > 0 && (w.objectBytes ?? 0) > 0, `${w.name}: snapshot and encrypted object sizes`);
      const expected: Record<string, MethodId[]> = {
        'openbao-300': ['baseline-a', 'baseline-b', 'ours-pipeline', 'ours-restore-verify', 'plain-download', 'ours-workflow'],
        'synthetic-16MiB': ['baseline-a', 'baseline-b', 'ours-pipeline', 'ours-restore-verify', 'plain-download'],
      };
      for (const [workload, methods] of Object.entries(expected)) {
        assert.deepEqual(r.rows.filter((x) => x.workload === workload).map((x) => x.method).sort(), [...methods].sort(), `${workload}: one row per method`);
      }
      for (const row of r.rows) {
        assert.equal(row.error, undefined, `${row.workload} ${row.method} failed`);
        assert.ok(row.seconds > 0 && row.mbPerSecond > 0 && row.peakRssMiB > 0 && (row.ratioToA ?? 0) > 0, `${row.workload} ${row.method}: positive numbers, got ${JSON.stringify(row)}`);
      }
      assert.ok(r.cipherCeiling.mbPerSecond > 0, 'openssl cipher ceiling parsed');
      assert.ok(r.machine.cpus > 0 && r.machine.node.startsWith('v'), 'machine recorded');
      assert.ok(r.targets.length >= 4, 'targets evaluated');
      assert.match(fs.readFileSync(path.join(out, 'smoke.md'), 'utf8'), /\| openbao-300 \| ours: backupVault workflow end to end \|/);
      assert.match(fs.readFileSync(path.join(out, 'smoke.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
