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
import { createShareIntakeServer } from '../infra/shareIntake';
import { freePort } from '../infra/stagingVault';
import { readTokensFile } from '../infra/codecServer';
import { historyTexts, vaultdrAsync } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
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
    for (let i = 0; i < 300; i++) {
      const p = await h.query<{ step: string; error?: string }>('progress');
      if (p.step === stepName) return p;
      if (p.step === 'failed') throw new Error(`failed: ${p.error}`);
      await sleep(200);
    }
    throw new Error(`never reached ${stepName}`);
  };

  it('sealUnsealDrill: seals, the API refuses, custodian shares through the intake unseal it, it serves again; phases timed', async () => {
    const workflowId = `seal-drill-${rand()}`;
    let shareValues: string[] = [];
    const result = await withIntake(async (endpoint) => {
      const h = await client.workflow.start('sealUnsealDrill', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ shares: 3, threshold: 2 }] });
      const p = await waitStep(workflowId, 'awaitCustodianShares');
      const files = (p as unknown as { shareFiles: string[] }).shareFiles;
      assert.equal(files.length, 3);
      shareValues = files.map((f) => fs.readFileSync(f, 'utf8').trim());
      const first = await vaultdrAsync(['keys', 'submit-share', workflowId, files[0]!, '--endpoint', endpoint]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /1 share\(s\) of 2 received/);
      await sleep(500);
      assert.equal((await h.query<{ step: string }>('progress')).step, 'awaitCustodianShares', 'must wait for the threshold');
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
});
