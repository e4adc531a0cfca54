// The worker's custodian share intake without Temporal: a corrupt share among the submissions no
// longer blocks the restore (the key is rebuilt from good shares and the bad one is named), and a
// "shares ready" signal that could not be sent is sent again on the next submission.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initKeys, readShareFile, type ShareFile } from '../infra/crypto/escrow';
import { ShareIntake, type IntakeStatus } from '../infra/vault/shareIntake';

describe('custodian share intake', function () {
  let dir: string;
  let shares: ShareFile[];
  let keyId: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-intake-'));
    await initKeys({ outDir: dir, shares: 5, threshold: 3 });
    shares = [1, 2, 3, 4, 5].map((i) => readShareFile(path.join(dir, `share-${i}-of-5.json`)));
    keyId = shares[0]!.keyId;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * The same share file with one byte of its share data (a y value) changed: byte `at`, so two
   * corrupt shares never touch the same byte and cannot cancel out. Not the last byte: that is the
   * share's x coordinate, and a changed x still rebuilds the right key about once in 256 (the
   * fingerprint check then rightly accepts it). Not byte 0 or 31 either: X25519 clamps bits there.
   */
  const corrupt = (s: ShareFile, at = 1): ShareFile => {
    const b = Buffer.from(s.share, 'base64');
    b[at]! ^= 0x5a;
    return { ...s, share: b.toString('base64') };
  };

  it('rebuilds the key from good shares when one submitted share is corrupt, and names the corrupt one', async () => {
    const told: IntakeStatus[] = [];
    const intake = new ShareIntake(async (_wf, st) => void told.push(st));
    intake.open('wf', [keyId]);
    await intake.submit('wf', shares[0]!);
    await intake.submit('wf', corrupt(shares[1]!));
    await assert.rejects(intake.submit('wf', shares[2]!), /the 3 shares received do not rebuild key .*at least one is corrupt.*submit another custodian's share/);
    assert.equal(intake.status('wf').ready, false);
    assert.equal(told.length, 0);
    const st = await intake.submit('wf', shares[3]!);
    assert.equal(st.ready, true);
    assert.equal(st.signalled, true);
    assert.equal(told.length, 1);
    assert.deepEqual(st.rejected?.map((r) => r.index), [2]);
    assert.equal(st.received, 3, 'the corrupt share is dropped');
    assert.ok(intake.keyFor('wf')?.length === 32);
    intake.close('wf');
    assert.equal(intake.keyFor('wf'), undefined);
  });

  it('without enough good shares it keeps waiting instead of rebuilding a wrong key', async () => {
    const intake = new ShareIntake(async () => undefined);
    intake.open('wf2', [keyId]);
    await intake.submit('wf2', corrupt(shares[0]!));
    await intake.submit('wf2', corrupt(shares[1]!, 2));
    await assert.rejects(intake.submit('wf2', shares[2]!), /do not rebuild/);
    await assert.rejects(intake.submit('wf2', shares[3]!), /the 4 shares received do not rebuild/);
    assert.equal(intake.status('wf2').ready, false);
    const st = await intake.submit('wf2', shares[4]!);
    assert.equal(st.ready, true);
    assert.deepEqual(st.rejected?.map((r) => r.index).sort(), [1, 2]);
  });

  it('re-sends the ready signal that failed, on the next submission', async () => {
    let fail = true;
    const told: IntakeStatus[] = [];
    const intake = new ShareIntake(async (_wf, st) => {
      if (fail) throw new Error('Temporal unreachable');
      told.push(st);
    });
    intake.open('wf3', [keyId]);
    await intake.submit('wf3', shares[0]!);
    await intake.submit('wf3', shares[1]!);
    await assert.rejects(intake.submit('wf3', shares[2]!), /key rebuilt, but the restore could not be told \(Temporal unreachable\); submit any share again to retry/);
    assert.equal(intake.status('wf3').ready, true);
    assert.equal(intake.status('wf3').signalled, false);
    fail = false;
    const st = await intake.submit('wf3', shares[0]!);
    assert.equal(st.signalled, true);
    assert.equal(told.length, 1);
    await intake.submit('wf3', shares[1]!);
    assert.equal(told.length, 1, 'told once');
  });
});
