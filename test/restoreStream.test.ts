// The restore download when S3 dies mid-stream: a TCP proxy in front of the stack's SeaweedFS cuts
// or freezes the connection in the middle of the backup object's body, and restoreSnapshot must
// fail clearly within seconds (not hang on timer heartbeats for hours). Heartbeats follow progress:
// none go out while no byte moves. The target is a real throwaway OpenBao (the "production" target),
// the backup a real encrypted raft snapshot of it in the stack's S3.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { DeleteObjectsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { restoreActivities } from '../activities/restore/restore';
import { backupObjectKeys } from '../common/backup';
import { BaoClient } from '../infra/vault/bao';
import { createEncryptor } from '../infra/crypto/backupFormat';
import { buildS3Client } from '../infra/clients';
import type { Config } from '../infra/config';
import { generateKeyPair } from '../infra/crypto/keys';
import { ensureStack } from './helpers/stack';
import { startThrowawayBao, type ThrowawayBao } from './helpers/throwawayBao';

type Mode = { kind: 'pass' } | { kind: 'cut' | 'freeze'; afterBytes: number };

/** A TCP proxy to S3 that passes, cuts or freezes the answer after some bytes of one connection. */
async function s3Proxy(upstream: URL): Promise<{ endpoint: string; mode: Mode; frozenAt?: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const state: { endpoint: string; mode: Mode; frozenAt?: number; close(): void } = { endpoint: '', mode: { kind: 'pass' }, close: () => undefined };
  const server = net.createServer((client) => {
    const up = net.connect(Number(upstream.port), upstream.hostname);
    sockets.add(client).add(up);
    let seen = 0;
    client.on('data', (d) => up.write(d));
    up.on('data', (d: Buffer) => {
      const m = state.mode;
      if (m.kind === 'pass' || seen + d.length < m.afterBytes) {
        seen += d.length;
        client.write(d);
        return;
      }
      client.write(d.subarray(0, m.afterBytes - seen));
      seen = m.afterBytes;
      if (m.kind === 'cut') {
        client.destroy();
        up.destroy();
      } else {
        // Freeze: both connections stay open, nothing more is forwarded.
        state.frozenAt ??= Date.now();
        up.pause();
      }
    });
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', () => state.mode.kind === 'freeze' || end());
    up.on('error', end).on('end', () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  state.close = () => {
    for (const s of sockets) s.destroy();
    server.close();
  };
  return state;
}

describe('restore download when S3 dies mid-stream (real stack S3, real OpenBao target)', function () {
  this.timeout(180_000);
  let cfg: Config;
  let bao: ThrowawayBao;
  let s3: S3Client;
  let proxy: Awaited<ReturnType<typeof s3Proxy>>;
  let objectBytes = 0;
  const backupId = `20260101T000000Z-${Date.now().toString(16).slice(-8)}`;
  const keys = backupObjectKeys(backupId);

  before(async () => {
    const stackCfg = await ensureStack();
    bao = await startThrowawayBao();
    // About 1 MiB of incompressible secrets, so the snapshot is large enough to cut in the middle.
    await bao.api('POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
    for (let i = 0; i < 40; i++) await bao.api('POST', `secret/data/bulk/${i}`, { data: { v: Buffer.from(Array.from({ length: 24_000 }, () => Math.floor(Math.random() * 256))).toString('base64') } });
    fs.writeFileSync(path.join(bao.dir, 'root-token'), bao.rootToken, { mode: 0o600 });
    const pair = generateKeyPair();
    const keyFile = path.join(bao.dir, 'validation-key.json');
    fs.writeFileSync(keyFile, JSON.stringify({ keyId: pair.keyId, privateKey: pair.privateKey.toString('base64') }), { mode: 0o600 });

    // A real encrypted backup of the throwaway server's raft snapshot, in the stack's bucket.
    const reader = new BaoClient({ ...stackCfg.vault, address: bao.address, tokenFile: path.join(bao.dir, 'root-token'), roleIdFile: undefined, secretIdFile: undefined });
    const plain: Buffer[] = [];
    for await (const c of await reader.snapshotStream()) plain.push(Buffer.from(c));
    await reader.close();
    const { stream: enc } = createEncryptor({ backupId, createdAt: new Date().toISOString(), recipients: [{ keyId: pair.keyId, role: 'escrow', publicKey: pair.publicKey.toString('base64') }], chunkSize: 64 * 1024 });
    const out: Buffer[] = [];
    enc.on('data', (c: Buffer) => out.push(c));
    const ended = new Promise((r) => enc.on('end', r));
    enc.end(Buffer.concat(plain));
    await ended;
    const object = Buffer.concat(out);
    objectBytes = object.length;
    assert.ok(objectBytes > 600_000, `backup object of ${objectBytes} bytes`);
    const direct = buildS3Client(stackCfg.s3);
    const put = await direct.send(new PutObjectCommand({ Bucket: stackCfg.s3.bucket, Key: keys.snapshot, Body: object }));
    const manifest = { manifestVersion: 1, backupId, status: 'verified', object: { bucket: stackCfg.s3.bucket, key: keys.snapshot, bytes: objectBytes, versionId: put.VersionId }, snapshot: { raftIndex: 1, clusterId: '' } };
    await direct.send(new PutObjectCommand({ Bucket: stackCfg.s3.bucket, Key: keys.manifest, Body: JSON.stringify(manifest) }));

    proxy = await s3Proxy(new URL(stackCfg.s3.endpoint!));
    cfg = {
      ...stackCfg,
      s3: { ...stackCfg.s3, endpoint: proxy.endpoint },
      backup: { ...stackCfg.backup, validationKeyFile: keyFile },
      restore: { ...stackCfg.restore, productionAddress: bao.address, productionTokenFile: path.join(bao.dir, 'root-token') },
    };
    s3 = buildS3Client(cfg.s3);
  });

  after(async () => {
    proxy?.close();
    if (cfg) {
      await buildS3Client({ ...cfg.s3, endpoint: (await ensureStack()).s3.endpoint })
        .send(new DeleteObjectsCommand({ Bucket: cfg.s3.bucket, Delete: { Objects: [{ Key: keys.snapshot }, { Key: keys.manifest }] } }))
        .catch(() => undefined);
    }
    await bao?.stop();
  });

  /** Runs restoreSnapshot as an activity with a 3 s heartbeat timeout; gives up (and says so) after 30 s. */
  async function restoreThroughProxy(mode: Mode) {
    proxy.mode = mode;
    proxy.frozenAt = undefined;
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 3000 });
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    const acts = restoreActivities({ s3, cfg });
    const started = Date.now();
    const outcome = await Promise.race([
      env.run(acts.restoreSnapshot, { backupId, target: { kind: 'production' as const } }).then(
        (r) => ({ ok: true as const, r }),
        (err: unknown) => ({ ok: false as const, err }),
      ),
      new Promise<{ ok: false; err: Error }>((r) => setTimeout(() => r({ ok: false, err: new Error('still running after 30s (hung)') }), 30_000)),
    ]);
    return { outcome, seconds: (Date.now() - started) / 1000, beats };
  }

  it('restores through the proxy when nothing fails, heartbeating as bytes move', async () => {
    const { outcome, beats } = await restoreThroughProxy({ kind: 'pass' });
    assert.ok(outcome.ok, String(!outcome.ok && outcome.err));
    assert.ok((outcome.r as { bytes: number }).bytes > 600_000);
    assert.ok(beats.length >= 1);
  });

  it('a production target behind TLS with a private CA (vault.caFile): plan and restore reach it', async () => {
    const tlsBao = await startThrowawayBao({ tls: true });
    try {
      fs.writeFileSync(path.join(tlsBao.dir, 'root-token'), tlsBao.rootToken, { mode: 0o600 });
      proxy.mode = { kind: 'pass' };
      const tlsCfg: Config = {
        ...cfg,
        vault: { ...cfg.vault, caFile: tlsBao.caFile },
        restore: { ...cfg.restore, productionAddress: tlsBao.address, productionTokenFile: path.join(tlsBao.dir, 'root-token') },
      };
      const acts = restoreActivities({ s3, cfg: tlsCfg });
      const plan = (await new MockActivityEnvironment().run(acts.planProductionRestore, { backupId })) as Awaited<ReturnType<typeof acts.planProductionRestore>>;
      assert.equal(plan.targetAddress, tlsBao.address);
      assert.equal(plan.targetSealed, false);
      const r = (await new MockActivityEnvironment({ heartbeatTimeoutMs: 5000 }).run(acts.restoreSnapshot, { backupId, target: { kind: 'production' as const } })) as { bytes: number };
      assert.ok(r.bytes > 600_000);
    } finally {
      await tlsBao.stop();
    }
  });

  it('S3 cuts the connection mid-body: a clear retryable failure within seconds', async () => {
    const { outcome, seconds } = await restoreThroughProxy({ kind: 'cut', afterBytes: 300_000 });
    assert.equal(outcome.ok, false);
    const err = (outcome as { err: unknown }).err;
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, 'StoreUnreachable');
    assert.equal(err.nonRetryable, false);
    assert.match(err.message, /failed mid-stream after \d+ of \d+ bytes/);
    assert.ok(seconds < 10, `failed after ${seconds}s`);
  });

  it('S3 freezes mid-body: no heartbeat while frozen, and the attempt fails at the heartbeat timeout', async () => {
    const { outcome, seconds, beats } = await restoreThroughProxy({ kind: 'freeze', afterBytes: 300_000 });
    assert.equal(outcome.ok, false);
    const err = (outcome as { err: unknown }).err;
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, 'TransferStalled');
    assert.equal(err.nonRetryable, false);
    assert.match(err.message, /no byte moved for 3s/);
    assert.ok(seconds < 10, `failed after ${seconds}s`);
    assert.ok(proxy.frozenAt, 'the proxy froze the stream');
    // One check interval (750 ms) may still report the last bytes that arrived before the freeze.
    const late = beats.filter((t) => t > proxy.frozenAt! + 1000);
    assert.deepEqual(late, [], 'heartbeats while no byte moved');
  });
});
