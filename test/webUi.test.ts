// The Temporal Web UI as an operator uses it, driven in Debian's Chromium (headless) against the
// real local stack: start vaultHealthCheck with `{}` from the UI, read its input and result decoded
// through the vault-dr codec endpoint, run the `progress` query, and approve a production restore
// with an update — each step asserted on what the page shows and saved as a screenshot under
// docs/screenshots/ (shown in the README's "Web UI" section).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import { connectClient } from '../client/connect';
import type { BackupResult } from '../common/backup';
import type { RestoreRecord } from '../common/restore';
import type { Config } from '../infra/config';
import { ENCODING } from '../infra/temporal/codec';
import { restartStaging, startStaging, stopStaging, unsealWithShares } from '../infra/vault/stagingVault';
import { registerSearchAttributes, stackDir } from '../stack/stack';
import { toolPaths } from '../stack/tools';
import { ensureCodecEndpoint, launchBrowser, runQueryFromUi, screenshot, sendUpdateFromUi, startWorkflowButton, startWorkflowFromUi, UI, uiSettings, type UiSettings } from './helpers/browser';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The approval a responder types into the UI's update form (the approveRestore update's argument). */
const APPROVAL_UPDATE = 'approveRestore';
const approval = (o: { who: string; why: string; allowOlderSnapshot?: boolean }) => ({ approve: true, ...o });

describe('Temporal Web UI in a browser (real stack, Debian Chromium)', function () {
  this.timeout(600_000);
  let cfg: Config;
  let client: Client;
  let settings: UiSettings;
  let stopCodec: () => Promise<void>;
  let browser: Browser;
  let page: Page;
  const ns = () => cfg.temporal.namespace;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('webui'));
    client = await connectClient(cfg);
    // A stack started before the attributes existed gets them here (workflows upsert them).
    await registerSearchAttributes(client.connection as Connection, ns());
    settings = await uiSettings();
    assert.ok(settings.Codec.Endpoint, 'the dev server must be started with --ui-codec-endpoint');
    stopCodec = await ensureCodecEndpoint(cfg, settings.Codec.Endpoint);
    ({ browser, page } = await launchBrowser());
  });
  afterEach(async function () {
    // A failed step leaves what the page showed, for whoever reads the failure.
    if (this.currentTest?.state !== 'failed' || !page) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-webui-failure-'));
    await page.screenshot({ path: path.join(dir, 'page.png') }).catch(() => undefined);
    fs.writeFileSync(path.join(dir, 'page.html'), await page.content().catch(() => ''));
    process.stderr.write(`web UI test failed on ${page.url()}; screenshot and HTML in ${dir}\n`);
  });
  after(async () => {
    await browser?.close();
    await stopCodec?.();
    await client?.connection.close();
  });

  /** Payload encodings as the server stores them, read with a client that has no codec. */
  const rawEncodings = async (workflowId: string) => {
    const raw = new Client({ connection: await Connection.connect({ address: cfg.temporal.address }), namespace: ns() });
    try {
      const events = (await raw.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      const enc = (p?: { metadata?: Record<string, Uint8Array> | null } | null) => Buffer.from(p?.metadata?.encoding ?? []).toString();
      return {
        input: enc(events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]),
        result: enc(events.at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0]),
      };
    } finally {
      await raw.connection.close();
    }
  };

  it('starts vaultHealthCheck with {} from the UI, shows its input and result decoded by the codec endpoint, and answers the progress query', async () => {
    const workflowId = `webui-health-${Date.now()}`;
    await withWorker(cfg, async () => {
      // a. The namespace's workflow list.
      await page.goto(`${UI}/namespaces/${ns()}/workflows`);
      await page.getByText(/^\d[\d,]* Workflows$/).waitFor();
      await page.locator('main table a[href*="/workflows/"]').first().waitFor(); // rows loaded, not the skeleton
      assert.ok(await startWorkflowButton(page).isVisible());
      await screenshot(page, '1-workflow-list');

      // b. Start Workflow form: type, the test's own task queue, input {}.
      await startWorkflowFromUi(page, { namespace: ns(), workflowId, taskQueue: cfg.temporal.taskQueue, workflowType: 'vaultHealthCheck', input: {} });
      await page.getByText('Task Queue is Active').waitFor(); // the UI sees this test's worker polling
      const started = page.getByRole('link', { name: 'Workflow started successfully' });
      await started.waitFor();
      await screenshot(page, '2-start-workflow');
      const desc = await client.workflow.getHandle(workflowId).describe();
      assert.equal(desc.type, 'vaultHealthCheck');
      assert.equal(desc.taskQueue, cfg.temporal.taskQueue);

      // c. The workflow page: input and result, decoded by the codec endpoint.
      await started.click();
      await page.getByText('Completed', { exact: true }).first().waitFor({ timeout: 60_000 });
      // The panels' labels (hidden dialogs carry an "Input" label too, hence visible only).
      const inputPanel = page.locator('main').getByText('Input', { exact: true }).locator('xpath=..').filter({ visible: true });
      const resultPanel = page.locator('main').getByText('Result', { exact: true }).locator('xpath=..').filter({ visible: true });
      await resultPanel.getByText('"status"').first().waitFor();
      const shownInput = await inputPanel.innerText();
      const shownResult = await resultPanel.innerText();
      assert.match(shownInput, /\{\}/, shownInput);
      assert.match(shownResult, /"status": "healthy"/, shownResult);
      assert.match(shownResult, /"vault": \{/, shownResult);
      assert.match(shownResult, /"initialized": true/, shownResult);
      assert.doesNotMatch(shownResult + shownInput, /binary\/encrypted|YmluYXJ5L2VuY3J5cHRlZA|"metadata"/);
      // What makes this a codec test: the server holds both payloads encrypted.
      assert.deepEqual(await rawEncodings(workflowId), { input: ENCODING, result: ENCODING });
      await resultPanel.scrollIntoViewIfNeeded();
      await screenshot(page, '3-input-and-result-decoded');

      // d. Queries tab: progress.
      const answer = await runQueryFromUi(page, 'progress');
      assert.match(answer, /"step": "done"/, answer);
      assert.match(answer, /"completed": \[/, answer);
      assert.match(answer, /"vault"/, answer);
      await screenshot(page, '4-progress-query');
    });
  });

  it('approves a production restore with an update sent from the UI', async () => {
    // The "production" cluster: an independent OpenBao the restore replaces (as in restore.test.ts).
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-webui-prod-'));
    const target = await startStaging({ root, stagingId: 'prod-target', baoBinary: toolPaths().bao });
    const targetToken = (JSON.parse(fs.readFileSync(path.join(target.dir, 'init.json'), 'utf8')) as { root_token: string }).root_token;
    const tokenFile = path.join(root, 'target-token');
    fs.writeFileSync(tokenFile, targetToken, { mode: 0o600 });
    const prodCfg: Config = { ...cfg, restore: { ...cfg.restore, productionAddress: target.address, productionTokenFile: tokenFile } };
    const workflowId = `webui-restore-${Date.now()}`;
    try {
      await withWorker(prodCfg, async () => {
        const backup = (await (await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `webui-backup-${Date.now()}`, args: [{ prune: false }] })).result()) as BackupResult;
        await startWorkflowFromUi(page, {
          namespace: ns(),
          workflowId,
          taskQueue: cfg.temporal.taskQueue,
          workflowType: 'restoreVault',
          input: { backupId: backup.backupId, target: 'production', reason: 'web UI test: rebuild after disk loss', requestedBy: 'operator-ui' },
        });
        await page.getByRole('link', { name: 'Workflow started successfully' }).click();
        const h = client.workflow.getHandle(workflowId);
        let plan: { older: boolean } | undefined;
        for (const until = Date.now() + 120_000; !plan; await sleep(250)) {
          const p = await h.query<{ step: string; plan?: { older: boolean }; error?: string }>('progress');
          assert.notEqual(p.step, 'failed', p.error);
          assert.ok(Date.now() < until, `never reached awaitApproval (at ${p.step})`);
          if (p.step === 'awaitApproval') plan = p.plan;
        }

        // The responder reads the plan in the UI before deciding.
        const shownPlan = await runQueryFromUi(page, 'progress');
        assert.match(shownPlan, /"step": "awaitApproval"/, shownPlan);
        assert.match(shownPlan, /"plan": \{/, shownPlan);
        await screenshot(page, '5-restore-waiting-for-approval');

        // A decision without a name is refused by the update's validator. Failure messages are encrypted in
        // Temporal (the failure converter encodes them), and the UI's update form does not decode a refusal:
        // it shows "Encoded failure". The reason is readable where the codec is: the client (and the CLI).
        const refused = await sendUpdateFromUi(page, APPROVAL_UPDATE, approval({ who: '', why: 'rebuild after disk loss' }));
        fs.writeFileSync(path.join(os.tmpdir(), 'vaultdr-webui-update-refused.html'), await page.content());
        assert.equal(refused.accepted, false, refused.text);
        assert.match(refused.text, /Encoded failure|say who decides/, refused.text);
        await assert.rejects(h.executeUpdate(APPROVAL_UPDATE, { args: [approval({ who: '', why: 'rebuild after disk loss' })] }), (err: Error & { cause?: Error }) => /say who decides/.test(`${err.message} ${err.cause?.message ?? ''}`));
        await screenshot(page, '6-update-rejected-by-validator');
        await page.getByTestId('update-confirmation-modal').filter({ visible: true }).getByTestId('cancel-modal-button').click();
        assert.equal((await h.query<{ step: string }>('progress')).step, 'awaitApproval', 'a refused update changed nothing');

        const accepted = await sendUpdateFromUi(page, APPROVAL_UPDATE, approval({ who: 'oncall-ui', why: 'rebuild after disk loss', ...(plan.older ? { allowOlderSnapshot: true } : {}) }));
        fs.writeFileSync(path.join(os.tmpdir(), 'vaultdr-webui-update-accepted.html'), await page.content());
        assert.equal(accepted.accepted, true, accepted.text);
        await screenshot(page, '7-update-accepted');
        const afterApproval = await runQueryFromUi(page, 'progress');
        // The editor renders only the lines in view, so the recorded approval is read with the client.
        assert.match(afterApproval, /"completed": \[[^\]]*"awaitApproval"/, afterApproval);
        assert.doesNotMatch(afterApproval, /"step": "awaitApproval"/, afterApproval);
        assert.equal((await h.query<{ approval?: { who: string } }>('progress')).approval?.who, 'oncall-ui');
        await screenshot(page, '8-restore-approved-progress');

        // The approved restore runs; the responder restarts and unseals the target (docs/runbooks/restore.md).
        for (let p = await h.query<{ step: string }>('progress'); p.step !== 'awaitTargetUnsealed'; p = await h.query<{ step: string }>('progress')) {
          assert.notEqual(p.step, 'failed');
          await sleep(250);
        }
        await sleep(1000);
        const restarted = await restartStaging(target);
        const shares = (JSON.parse(fs.readFileSync(path.join(stackDir(), 'openbao', 'init.json'), 'utf8')) as { keys_base64: string[] }).keys_base64;
        await unsealWithShares(restarted.address, shares.slice(0, 3));
        const r = (await h.result()) as RestoreRecord;
        assert.equal(r.status, 'verified');
        assert.equal(r.approval?.who, 'oncall-ui');
        await page.getByRole('tab', { name: 'Timeline' }).click();
        await page.getByText('Completed', { exact: true }).first().waitFor({ timeout: 60_000 });
        await page.locator('main').getByText('"verified"').first().waitFor();
        await screenshot(page, '9-restore-completed');
      });
    } finally {
      await stopStaging(root, 'prod-target');
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
