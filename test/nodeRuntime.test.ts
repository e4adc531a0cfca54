// The supported Node.js range (package.json "engines": 22 or later) and scripts/node.sh, which
// test.sh, main.sh and ensure-deps.sh source to put a current LTS first on PATH when the machine's
// node is older (Node.js 20 is end of life; the AWS SDK's 2027 releases need 22).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from './helpers/stack';

const major = (v: string) => Number(/^v?(\d+)/.exec(v.trim())?.[1] ?? 0);

describe('Node.js runtime', function () {
  this.timeout(180_000);

  it('package.json requires Node.js 22 or later, and the tests run on such a node', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    assert.equal(pkg.engines.node, '>=22');
    assert.ok(major(process.version) >= 22, `running on ${process.version}`);
  });

  it('scripts/node.sh installs the LTS from the npm registry into an empty cache when the system node is older', function () {
    let systemNode = '';
    try {
      systemNode = execFileSync('/usr/bin/node', ['--version'], { encoding: 'utf8' });
    } catch {
      this.skip();
    }
    if (major(systemNode) >= 22) this.skip(); // nothing to install on this machine
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-node-cache-'));
    try {
      const env = { ...process.env, PATH: '/usr/local/bin:/usr/bin:/bin', VAULTDR_CACHE_DIR: cache };
      const script = `set -euo pipefail; . scripts/node.sh; node --version; command -v node`;
      const out = execFileSync('bash', ['-c', script], { cwd: PROJECT_ROOT, env, encoding: 'utf8' }).trim().split('\n');
      const [version, where] = out.slice(-2);
      assert.ok(major(version!) >= 22, out.join('\n'));
      assert.ok(where!.startsWith(cache), `node comes from ${where}`);
      // Cached: the second run installs nothing.
      const again = execFileSync('bash', ['-c', script], { cwd: PROJECT_ROOT, env, encoding: 'utf8' });
      assert.doesNotMatch(again, /installing/);
      assert.match(again, new RegExp(`using ${version!.replace(/\./g, '\\.')}`));
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});
