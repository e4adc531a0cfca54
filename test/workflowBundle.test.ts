// The prebuilt workflow bundle (workers/workflowBundle.ts): the build leaves a current one that the
// workflows role loads, and a bundle older than the built workflow code is never used.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUNDLE_FILE, prebuiltBundle, saveBundle, sourcesDigest } from '../workers/workflowBundle';

describe('prebuilt workflow bundle', () => {
  it('the build (scripts/ensure-deps.sh) left a bundle that matches the built workflow code', () => {
    const pre = prebuiltBundle();
    assert.ok('codePath' in pre, 'reason' in pre ? pre.reason : '');
    assert.equal(pre.codePath, BUNDLE_FILE);
    assert.match(fs.readFileSync(BUNDLE_FILE, 'utf8').slice(0, 200_000), /backupVault/);
  });

  it('is refused once built worker code changes, appears or goes (not tests or benchmarks), and when it or its stamp is missing', () => {
    const lib = fs.mkdtempSync(path.join(os.tmpdir(), 'vdr-bundle-'));
    try {
      fs.mkdirSync(path.join(lib, 'workflows', 'backup'), { recursive: true });
      fs.mkdirSync(path.join(lib, 'common'));
      fs.writeFileSync(path.join(lib, 'workflows', 'backup', 'a.js'), 'exports.a = 1;\n');
      fs.writeFileSync(path.join(lib, 'common', 'b.js'), 'exports.b = 1;\n');
      assert.match((prebuiltBundle(lib) as { reason: string }).reason, /no prebuilt workflow bundle/);
      const fresh = () => saveBundle(lib, '/* bundle */', sourcesDigest(lib));
      fresh();
      assert.deepEqual(prebuiltBundle(lib), { codePath: path.join(lib, 'workflow-bundle.js') });
      const stale = (what: string) => assert.match((prebuiltBundle(lib) as { reason?: string }).reason ?? 'used', /older than the built workflow code/, what);
      fs.writeFileSync(path.join(lib, 'workflows', 'backup', 'a.js'), 'exports.a = 2;\n');
      stale('a changed workflow file');
      fresh();
      fs.writeFileSync(path.join(lib, 'common', 'c.js'), 'exports.c = 1;\n');
      stale('a new common file');
      fresh();
      fs.rmSync(path.join(lib, 'common', 'b.js'));
      stale('a removed common file');
      fresh();
      fs.mkdirSync(path.join(lib, 'infra'));
      fs.writeFileSync(path.join(lib, 'infra', 'd.js'), 'exports.d = 1;\n');
      stale('any other built code (a workflow could import it)');
      fresh();
      fs.mkdirSync(path.join(lib, 'test'));
      fs.writeFileSync(path.join(lib, 'test', 'e.test.js'), 'exports.e = 1;\n');
      assert.ok('codePath' in prebuiltBundle(lib), 'a test file does not make the bundle stale');
      fs.rmSync(path.join(lib, 'workflow-bundle.js'));
      assert.match((prebuiltBundle(lib) as { reason: string }).reason, /is missing/);
    } finally {
      fs.rmSync(lib, { recursive: true, force: true });
    }
  });
});
