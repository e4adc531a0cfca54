// The staging folder decides where a decrypted snapshot and the unseal shares go, so a worker only
// uses one that is its own: created 0700, and refused when it is a symlink, another user's, or open
// to group/others. The OpenBao binary is taken from config, never from the state file in it.
// Needs the OpenBao binary from the stack's tool cache, not the running stack.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { toolPaths } from '../stack/tools';
import { readStaging, restartStaging, startStaging, stopStaging, type StagingInfo } from '../infra/vault/stagingVault';

describe('staging folder ownership and state', function () {
  this.timeout(120_000);
  let base: string;
  const bao = toolPaths().bao;
  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-stagingdir-'));
  });
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  const refused = (root: string, why: RegExp) =>
    assert.rejects(startStaging({ root, stagingId: 'probe', baoBinary: bao }), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.match(err.message, new RegExp(`staging folder ${root.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(restore\\.stagingDir\\) `));
      assert.match(err.message, why);
      assert.equal(err.type, 'ConfigInvalid');
      assert.equal(err.nonRetryable, true, 'a person must fix the folder: retrying cannot');
      return true;
    });

  it('creates a missing staging folder with mode 0700', () => {
    const root = path.join(base, 'fresh');
    assert.equal(readStaging(root, 'x'), undefined);
    // startStaging creates it before anything else; checked without starting a server:
    return assert.rejects(startStaging({ root, stagingId: 'x', baoBinary: path.join(base, 'no-such-bao') }), /cannot start staging OpenBao/).then(() => {
      const st = fs.lstatSync(root);
      assert.equal(st.mode & 0o777, 0o700);
      assert.equal(st.uid, process.getuid!());
    });
  });

  it('refuses a pre-created world-writable staging folder', async () => {
    const root = path.join(base, 'open');
    fs.mkdirSync(root);
    fs.chmodSync(root, 0o777);
    await refused(root, /has mode 0777, which lets group or others in/);
    assert.deepEqual(fs.readdirSync(root), [], 'nothing may be written into it');
  });

  it('refuses a staging folder owned by another user (nobody)', async function () {
    if (process.getuid!() !== 0) this.skip(); // chown needs root; CI runs as root
    const root = path.join(base, 'foreign');
    fs.mkdirSync(root, { mode: 0o700 });
    fs.chownSync(root, 65534, 65534);
    await refused(root, /is owned by uid 65534, not by this worker's uid 0/);
  });

  it('refuses a staging folder that is a symbolic link, even to a safe folder', async () => {
    const real = path.join(base, 'real');
    fs.mkdirSync(real, { mode: 0o700 });
    const root = path.join(base, 'link');
    fs.symlinkSync(real, root);
    await refused(root, /is a symbolic link/);
    assert.throws(() => readStaging(root, 'probe'), /is a symbolic link/);
  });

  it('takes the OpenBao binary from config on restart, never from the state file', async () => {
    const root = path.join(base, 'ok');
    const marker = path.join(base, 'planted-binary-ran');
    const planted = path.join(base, 'planted.sh');
    fs.writeFileSync(planted, `#!/bin/sh\ntouch ${marker}\nexec ${bao} "$@"\n`, { mode: 0o755 });
    const started = await startStaging({ root, stagingId: 'redirect', baoBinary: bao });
    try {
      // What an attacker (or a stale file) could put in the state: another binary.
      const file = path.join(root, 'redirect', 'staging.json');
      const state = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      fs.writeFileSync(file, JSON.stringify({ ...state, baoBinary: planted }));
      const info = readStaging(root, 'redirect') as StagingInfo;
      const again = await restartStaging(info, bao);
      assert.equal(again.address, started.address);
      assert.equal(fs.existsSync(marker), false, 'the binary named in the state file was run');
    } finally {
      await stopStaging(root, 'redirect');
    }
  });

  it('refuses a state file that sends the snapshot to a non-loopback address, and never takes the folder from it', () => {
    const root = path.join(base, 'addr');
    fs.mkdirSync(path.join(root, 's1'), { recursive: true, mode: 0o700 });
    fs.mkdirSync(path.join(root, 's2'), { mode: 0o700 });
    fs.writeFileSync(path.join(root, 's2', 'staging.json'), JSON.stringify({ stagingId: 's2', address: 'http://127.0.0.1:1', pid: 1, dir: base }));
    assert.equal(readStaging(root, 's2')?.dir, path.join(root, 's2'), 'the folder comes from the staging id, not the file');
    fs.writeFileSync(path.join(root, 's1', 'staging.json'), JSON.stringify({ stagingId: 's1', address: 'http://attacker.example:8200', pid: 1, dir: path.join(root, 's1') }));
    assert.throws(() => readStaging(root, 's1'), /is not one this worker wrote \(address must be http:\/\/127\.0\.0\.1:<port>\)/);
  });
});
