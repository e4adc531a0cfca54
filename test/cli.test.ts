// The `vaultdr` CLI as a user runs it: a child process of bin/vaultdr.js, exit codes and one-line errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stackDir } from '../stack/stack';
import { ensureStack, PROJECT_ROOT } from './helpers/stack';

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
    // The health workflow suite in this run leaves executions behind; list shows what exists.
    const r = vaultdr(['workflows', 'list', '--json', '--limit', '5']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
    const bad = vaultdr(['workflows', 'list', '--limit', 'many']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--limit: expected a positive integer/);
  });
});
