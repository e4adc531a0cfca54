// The `vaultdr` CLI as a user runs it: a child process of bin/vaultdr.js, exit codes and one-line errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stackDir } from '../stack/stack';
import { connectClient } from '../client/connect';
import { ensureStack, PROJECT_ROOT } from './helpers/stack';
import { withWorker } from './helpers/worker';

function vaultdr(args: string[], env: NodeJS.ProcessEnv = {}) {
  const res = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'vaultdr.js'), ...args], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('vaultdr CLI (real stack)', function () {
  this.timeout(120_000);
  before(() => ensureStack());

  it('health --json reports healthy with exit 0', () => {
    const r = vaultdr(['health', '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const report = JSON.parse(r.stdout) as { status: string; vault: { sealed: boolean }; temporal: { status: string } };
    assert.equal(report.status, 'healthy');
    assert.equal(report.vault.sealed, false);
    assert.equal(report.temporal.status, 'healthy');
  });

  it('health prints a readable report', () => {
    const r = vaultdr(['health']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^overall: HEALTHY/m);
    assert.match(r.stdout, /^vault\s+healthy\s+version \d+\.\d+\.\d+, unsealed, active/m);
  });

  it('an unknown flag is one clear line and exit 2', () => {
    const r = vaultdr(['health', '--frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--frobnicate'/);
    assert.equal(r.stdout, '');
  });

  it('a malformed config is one line naming the field and exit 1', () => {
    const r = vaultdr(['health'], { VAULTDR_SMTP_PORT: '99999' });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^vaultdr: config: smtp\.port: .*\(from VAULTDR_SMTP_PORT\)/);
  });

  it('unreachable servers are reported per component with exit 3', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-cli-'));
    const r = vaultdr(['health', '--json'], {
      VAULTDR_VAULT_ADDR: 'http://127.0.0.1:1',
      VAULTDR_S3_ENDPOINT: 'http://127.0.0.1:1',
      VAULTDR_SMTP_PORT: '1',
      VAULTDR_TEMPORAL_ADDRESS: '127.0.0.1:1',
      TMPDIR: dir,
    });
    assert.equal(r.code, 3, r.stderr);
    const report = JSON.parse(r.stdout) as Record<string, { status: string; problems: string[] }> & { status: string };
    assert.equal(report.status, 'unhealthy');
    for (const part of ['temporal', 'vault', 'objectStore', 'mail']) {
      assert.equal(report[part]!.status, 'unhealthy', part);
      assert.match(report[part]!.problems.join(), /unreachable/, part);
    }
  });

  it('workflows list --json returns rows after a health workflow ran', async () => {
    // Run one on the CLI's task queue first, so the list cannot pass by being empty.
    const cfg = await ensureStack();
    const workflowId = `cli-list-${Date.now()}`;
    await withWorker(cfg, async () => {
      const client = await connectClient(cfg);
      try {
        await client.workflow.execute('vaultHealthCheck', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{}] });
      } finally {
        await client.connection.close();
      }
    });
    type Row = { workflowId: string; type: string; status: string; startTime: string };
    let rows: Row[] = [];
    // Visibility is eventually consistent: give the listing a few seconds to show the run.
    for (let i = 0; i < 20 && !rows.some((x) => x.workflowId === workflowId); i++) {
      const r = vaultdr(['workflows', 'list', '--json', '--type', 'vaultHealthCheck', '--limit', '5']);
      assert.equal(r.code, 0, r.stderr);
      rows = JSON.parse(r.stdout) as Row[];
      if (!rows.some((x) => x.workflowId === workflowId)) await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(rows.length >= 1 && rows.length <= 5, `rows: ${rows.length}`);
    const row = rows.find((x) => x.workflowId === workflowId);
    assert.ok(row, `the health run ${workflowId} is not listed: ${JSON.stringify(rows)}`);
    assert.equal(row.type, 'vaultHealthCheck');
    assert.match(row.status, /^completed$/i);
    assert.ok(rows.every((x) => x.type === 'vaultHealthCheck'), '--type must filter');
    const bad = vaultdr(['workflows', 'list', '--limit', 'many']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--limit: expected a positive integer/);
  });
});
