// The emergency seal/unseal drill and the unseal-key rotation ceremony on throwaway OpenBao servers
// (real binaries, the real share intake and CLI): the drill seals, proves the API refuses, is
// unsealed by custodian shares submitted through `vaultdr keys submit-share` (never through
// Temporal) and serves again, each phase timed; no share is in the history.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import type { SealDrillResult } from '../common/rotation';
import { createShareIntakeServer } from '../infra/vault/shareIntake';
import { freePort } from '../infra/vault/stagingVault';
import { readTokensFile } from '../infra/temporal/codecServer';
import { historyTexts, vaultdrAsync } from './helpers/inspect';
import { defaultPayloadConverter } from '@temporalio/common';
import { EncryptionCodec, loadKeyring } from '../infra/temporal/codec';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import * as os from 'node:os';
import * as path from 'node:path';
import * as openpgp from 'openpgp';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { buildS3Client } from '../infra/clients';
import { decryptShare } from '../infra/unsealKeys';
import { PROJECT_ROOT } from './helpers/stack';
import type { UnsealRotationResult } from '../common/unsealKeys';
import type { BackupManifest } from '../common/backup';
import { startThrowawayBao, type ThrowawayBao } from './helpers/throwawayBao';
import { withWorker } from './helpers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = () => crypto.randomBytes(4).toString('hex');

describe('emergency ceremonies: seal/unseal drill and unseal-key rotation (throwaway OpenBao)', function () {
  this.timeout(180_000);
  let cfg: Config;
  let client: Client;
  const timings: Record<string, unknown> = {};

  before(async () => {
    const base = await ensureStack();
    cfg = withQueue({ ...base, metrics: { listen: '' } }, uniqueQueue('ceremony'));
    client = await connectClient(cfg);
  });
  after(async () => {
    console.log(`      ceremony timings (ms): ${JSON.stringify(timings)}`);
    await client?.connection.close();
  });

  /** Runs `fn` with a worker and its share intake listening on a free port. */
  const withIntake = async <T>(fn: (endpoint: string) => Promise<T>): Promise<T> =>
    withWorker(cfg, async ({ intake }) => {
      const port = await freePort();
      const server = createShareIntakeServer({ intake: intake!, tokens: readTokensFile(cfg.restore.shareIntakeTokensFile) });
      await new Promise<void>((res) => server.listen(port, '127.0.0.1', res));
      try {
        return await fn(`http://127.0.0.1:${port}`);
      } finally {
        server.close();
      }
    });
  const waitStep = async (workflowId: string, stepName: string) => {
    const h = client.workflow.getHandle(workflowId);
    let p: { step: string; error?: string; waitingFor?: string } = { step: '?' };
    for (let i = 0; i < 300; i++) {
      p = await h.query<{ step: string; error?: string }>('progress');
      if (p.step === stepName) return p;
      if (p.step === 'failed') throw new Error(`failed: ${p.error}`);
      await sleep(200);
    }
    const codec = new EncryptionCodec(loadKeyring(cfg.codec.keysFile));
    const pending = await Promise.all(
      ((await h.describe()).raw.pendingActivities ?? []).map(async (a) => {
        const enc = a.lastFailure?.encodedAttributes;
        const msg = enc ? defaultPayloadConverter.fromPayload<{ message: string }>((await codec.decode([enc as never]))[0]!).message : (a.lastFailure?.message ?? '');
        return `${a.activityType?.name} attempt ${a.attempt}: ${msg}`;
      }),
    );
    throw new Error(`never reached ${stepName}: at ${p.step} (${p.waitingFor ?? ''}); pending ${JSON.stringify(pending)}`);
  };

  it('sealUnsealDrill: seals, the API refuses, custodian shares through the intake unseal it, it serves again; phases timed', async () => {
    const workflowId = `seal-drill-${rand()}`;
    let shareValues: string[] = [];
    const result = await withIntake(async (endpoint) => {
      const h = await client.workflow.start('sealUnsealDrill', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ shares: 3, threshold: 2 }] });
      const p = await waitStep(workflowId, 'awaitDrillShares');
      const files = (p as unknown as { shareFiles: string[] }).shareFiles;
      assert.equal(files.length, 3);
      shareValues = files.map((f) => fs.readFileSync(f, 'utf8').trim());
      const first = await vaultdrAsync(['keys', 'submit-share', workflowId, files[0]!, '--endpoint', endpoint]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /1 share\(s\) of 2 received/);
      await sleep(500);
      assert.equal((await h.query<{ step: string }>('progress')).step, 'awaitDrillShares', 'must wait for the threshold');
      const second = await vaultdrAsync(['keys', 'submit-share', workflowId, files[2]!, '--endpoint', endpoint]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /threshold reached/);
      return (await h.result()) as SealDrillResult;
    });
    timings.sealUnsealDrill = result.phasesMs;
    assert.equal(result.refusedWhileSealed, true);
    assert.equal(result.servesAgain, true);
    assert.equal(result.sharesUsed, 2);
    assert.match(result.detail, /HTTP 503/);
    for (const k of ['seal', 'proveRefuses', 'unseal', 'serveAgain', 'total'] as const) assert.ok(result.phasesMs[k] >= 0, `phase ${k} not timed`);
    const { decoded, raw, activityTypes } = await historyTexts(client, cfg, workflowId);
    assert.ok(activityTypes.includes('teardownDrillVault'));
    const everything = decoded.join('\n') + raw;
    for (const [i, s] of shareValues.entries()) assert.ok(!everything.includes(s), `share ${i + 1} appears in history`);
  });

  it('rotateUnsealKeys: three custodians rotate the unseal keys through OpenBao (never Temporal); the new shares unseal a throwaway copy and the cluster, the old ones no longer do', async () => {
    const bao: ThrowawayBao = await startThrowawayBao({ shares: 3, threshold: 2 });
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-rekey-'));
    const f = (n: string, content: string) => {
      fs.writeFileSync(path.join(tmp, n), content, { mode: 0o600 });
      return path.join(tmp, n);
    };
    const policy = (n: string) => fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'openbao', 'policies', `${n}.hcl`), 'utf8');
    try {
      for (const n of ['vaultdr-custodian', 'vaultdr-unseal-ceremony']) assert.equal((await bao.api('PUT', `sys/policies/acl/${n}`, { policy: policy(n) })).status, 204);
      const tokenFor = async (p: string) => (await bao.api('POST', 'auth/token/create', { policies: [p], ttl: '1h' })).json.auth.client_token as string;
      const names = ['alice', 'bob', 'carol'];
      const custodians = await Promise.all(names.map(async (name) => ({ name, ...(await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name, email: `${name}@example.com` }], format: 'armored' })), tokenFile: f(`${name}-token`, await tokenFor('vaultdr-custodian')) })));
      const oldShareFiles = bao.unsealKeys.map((k, i) => f(`old-share-${i + 1}`, k));
      const privFiles = custodians.map((c) => f(`${c.name}.priv.asc`, c.privateKey));
      const rcfg: Config = {
        ...cfg,
        rotation: { ...cfg.rotation, unsealAddress: bao.address, unsealTokenFile: f('ceremony-token', await tokenFor('vaultdr-unseal-ceremony')), custodiansFile: f('custodians.json', JSON.stringify(custodians.map((c) => ({ name: c.name, publicKey: c.publicKey })))) },
      };
      const workflowId = `rekey-${rand()}`;
      const cli = (args: string[]) => vaultdrAsync(args);
      let newShares: string[] = [];
      const result = await withWorker(rcfg, async ({ intake }) => {
        const port = await freePort();
        const server = createShareIntakeServer({ intake: intake!, tokens: readTokensFile(cfg.restore.shareIntakeTokensFile) });
        await new Promise<void>((res) => server.listen(port, '127.0.0.1', res));
        try {
          const h = await client.workflow.start('rotateUnsealKeys', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ threshold: 2 }] });
          await waitStep(workflowId, 'awaitCurrentShares');
          // Phase 1: two custodians submit their CURRENT shares straight to OpenBao with their own tokens.
          for (const i of [0, 2]) {
            const r = await cli(['keys', 'rotate-submit', oldShareFiles[i]!, '--token-file', custodians[i]!.tokenFile, '--address', bao.address]);
            assert.equal(r.code, 0, r.stderr);
            assert.ok(!r.stdout.includes('c15e') && !/[0-9a-f]{200}/.test(r.stdout), 'the CLI printed encrypted shares');
          }
          // Phase 2: the workflow hands out each custodian's PGP-encrypted share; two verify theirs.
          const p = (await waitStep(workflowId, 'awaitVerification')) as unknown as { distribution: string[] };
          assert.equal(p.distribution.length, 3);
          const s3 = buildS3Client(cfg.s3);
          const asc = await Promise.all(p.distribution.map(async (key, i) => f(`${names[i]}.share.asc`, await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: key }))).Body!.transformToString())));
          assert.ok(asc.every((file) => fs.readFileSync(file, 'utf8').includes('BEGIN PGP MESSAGE')));
          newShares = await Promise.all(asc.map((file, i) => decryptShare(fs.readFileSync(file, 'utf8'), custodians[i]!.privateKey)));
          for (const i of [0, 1]) {
            const r = await cli(['keys', 'rotate-verify', asc[i]!, '--pgp-key', privFiles[i]!, '--token-file', custodians[i]!.tokenFile, '--address', bao.address]);
            assert.equal(r.code, 0, r.stderr);
          }
          // Phase 3: the new shares unseal a throwaway copy, through the worker's share intake.
          await waitStep(workflowId, 'awaitNewShares');
          for (const i of [1, 2]) {
            const r = await cli(['keys', 'submit-share', workflowId, asc[i]!, '--pgp-key', privFiles[i]!, '--endpoint', `http://127.0.0.1:${port}`]);
            assert.equal(r.code, 0, r.stderr);
          }
          return (await h.result()) as UnsealRotationResult;
        } finally {
          server.close();
        }
      });
      timings.rotateUnsealKeys = result.phasesMs;
      assert.equal(result.provenOnCopy, true);
      assert.equal(result.generation, 2);
      assert.equal(result.previousGeneration, 1);
      assert.deepEqual(result.custodians.map((c) => c.name), names);
      assert.ok(result.backupId, 'no fresh backup after the rotation');

      // Independently, on the rotated server: the old shares no longer unseal it, the new ones do.
      assert.equal((await bao.api('POST', 'sys/seal')).status, 204);
      await bao.api('POST', 'sys/unseal', { key: bao.unsealKeys[0] });
      const old2 = await bao.api('POST', 'sys/unseal', { key: bao.unsealKeys[1] });
      assert.ok(old2.status >= 400 || old2.json.sealed === true, 'the old shares still unseal the cluster');
      await bao.api('POST', 'sys/unseal', { reset: true });
      for (const k of newShares.slice(0, 2)) await bao.api('POST', 'sys/unseal', { key: k });
      assert.equal((await bao.api('GET', 'sys/seal-status')).json.sealed, false, 'the new shares do not unseal the cluster');

      // The fresh backup's manifest names the unseal-key generation that opens it.
      const s3 = buildS3Client(cfg.s3);
      const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: `backups/${result.backupId}/manifest.json` }))).Body!.transformToString()) as BackupManifest;
      assert.ok(manifest.unsealKeys && manifest.unsealKeys.generation >= 1, 'the manifest does not record its unseal-key generation');

      const { decoded, raw } = await historyTexts(client, rcfg, workflowId);
      const everything = decoded.join('\n') + raw;
      for (const [name, v] of [...bao.unsealKeys.map((k, i) => [`old share ${i + 1}`, k]), ...newShares.map((k, i) => [`new share ${i + 1}`, k]), ['root token', bao.rootToken]] as [string, string][]) {
        assert.ok(!everything.includes(v), `${name} appears in history`);
      }
    } finally {
      await bao.stop();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
