// drDrill's credential-compromise scenario on the real local stack (no HA harness): a real worker,
// OpenBao (the drill AppRole vaultdr-drill and its secret-id in KV, stack/stack.ts
// ensureDrillCredential), Temporal, SeaweedFS and Mailpit.
// - automated: the steady state logs in with the stored secret-id; a TRAINING breachResponse child
//   declares the class leaked, the drill answers as its responders (acknowledge, containment,
//   notice digest, close), its rotateCredential child rotates the secret-id; the declared e-mail is
//   observed in Mailpit (time to detect), the drill's own probes show the new secret-id logs in and
//   the leaked one is refused (the test logs in itself too), one TRAINING notice per tenant reached
//   Mailpit, the incident is closed, the report is in the bucket and mailed, and neither secret-id
//   nor any stack secret is in the drill's, the incident's or the rotation's history;
// - refusals: the target not marked drillable (DrillRefused), a drill credential that does not
//   log in (DrillSteadyStateNotHolding): no incident is declared.
// VAULTDR_DRILL_REPORT_DIR=<dir>: the first test also writes the report's .md/.html/.svg/.json
// there (docs/drills/) and saves its history as the replay fixture drDrill-credential-compromise.
// Timings are never asserted (the report states them against the scenario's targets).
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { Config } from '../infra/config';
import { buildS3Client } from '../infra/clients';
import type { DrDrillReport, DrDrillResult } from '../common/drillRun';
import { ensureDrillCredential, ensureRotatorToken } from '../stack/stack';
import { bao, failureOf, historyTexts, mailpitMessages, mailpitText, stackSecrets } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import { HISTORY_DIR, saveDecoded } from './saveHistories';
import type { DrDrillProgress } from '../workflows/drills/drDrill';
import { writeCommittedReport } from './helpers/drillReports';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KV = 'secret/data/vault-dr/credentials/approle-secret-id/vaultdr-drill';

async function login(roleId: string, secretId: string): Promise<number> {
  const r = await bao('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId });
  if (r.status === 200) await fetch('http://127.0.0.1:8200/v1/auth/token/revoke-self', { method: 'POST', headers: { 'X-Vault-Token': r.json.auth.client_token as string } });
  return r.status;
}

describe('drDrill: credential-compromise on the local stack (training incident, rotation, notices in Mailpit)', function () {
  this.timeout(240_000);
  let cfg: Config;
  let client: Client;
  const token = crypto.randomBytes(4).toString('hex');
  const tenants = [
    { id: 'acme', name: 'Acme Health GmbH (drill)', noticeEmail: `privacy+${token}@acme.test`, secretPaths: ['secret/data/tenants/acme/db'], jurisdictions: ['EU'] },
    { id: 'globex', name: 'Globex Inc. (drill)', noticeEmail: `dpo+${token}@globex.test`, secretPaths: ['secret/data/tenants/globex/api'], jurisdictions: ['US-CA'] },
  ];

  before(async () => {
    const base = await ensureStack();
    await ensureDrillCredential();
    cfg = {
      ...withQueue(base, uniqueQueue('drdrill-cred')),
      rotation: { ...base.rotation, tokenFile: await ensureRotatorToken() },
      incident: { ...base.incident, tenantRegistryPath: `vault-dr/tenants-drill-${token}` },
      drills: { ...base.drills, drillableTargets: ['credential-class'], distributionList: [`dr-drills+${token}@localhost`] },
      metrics: { listen: '' },
      restore: { ...base.restore, shareIntakeTokensFile: undefined },
    };
    const put = await bao('POST', `secret/data/vault-dr/tenants-drill-${token}`, { data: { tenants } });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    client = await connectClient(cfg);
  });
  after(async () => {
    await bao('DELETE', `secret/metadata/vault-dr/tenants-drill-${token}`).catch(() => undefined);
    await client?.connection.close();
  });

  const start = (id: string, input: unknown, c: Config = cfg) => client.workflow.start('drDrill', { taskQueue: c.temporal.taskQueue, workflowId: `${id}-${token}-${Date.now()}`, args: [input as never] });

  it('automated: declared leaked, detected by e-mail, rotated by the incident, new works and old refused, notices per tenant, incident closed, report stored and mailed', async () => {
    const before = (await bao('GET', KV)).json.data as { data: { role_id: string; secret_id: string }; metadata: { version: number } };
    const old = before.data;
    assert.equal(await login(old.role_id, old.secret_id), 200, 'the drill credential works before the drill');
    const t0 = Date.now();
    const { result, progress, workflowId, histories } = await withWorker(cfg, async () => {
      const h = await start('drdrill-cred', { scenario: 'credential-compromise', reason: 'first credential-compromise drill' });
      const result = (await h.result()) as DrDrillResult;
      if (process.env.VAULTDR_DRILL_REPORT_DIR) {
        await saveDecoded(client, cfg, h, 'drDrill-credential-compromise');
        // Its children are named after its id: the replay runs under the recorded one.
        fs.writeFileSync(path.join(HISTORY_DIR, 'drDrill-credential-compromise.workflowId'), `${h.workflowId}\n`);
      }
      const ids = [h.workflowId, `${h.workflowId}-incident`, `${h.workflowId}-incident-rotate-approle-secret-id`];
      return { result, progress: (await h.query('progress')) as DrDrillProgress, workflowId: h.workflowId, histories: await Promise.all(ids.map((id) => historyTexts(client, cfg, id))) };
    });
    const wallMs = Date.now() - t0;
    assert.equal(progress.step, 'done', JSON.stringify(progress));
    assert.deepEqual(progress.completed, ['checkDrillPreconditions', 'checkSteadyState', 'injectFault', 'awaitDetection', 'verifyRecovery', 'revertFault', 'writeReport']);
    assert.equal(result.outcome, 'passed', JSON.stringify(result));

    // The leaked secret-id is refused now, the new one (a later KV version) logs in: checked by the test itself.
    const after = (await bao('GET', KV)).json.data as { data: { role_id: string; secret_id: string }; metadata: { version: number } };
    assert.ok(after.metadata.version > before.metadata.version);
    assert.notEqual(after.data.secret_id, old.secret_id);
    assert.equal(await login(after.data.role_id, after.data.secret_id), 200, 'the new secret-id logs in');
    assert.notEqual(await login(old.role_id, old.secret_id), 200, 'the leaked secret-id is refused');

    // Detection: the incident's declared e-mail, seen in Mailpit after the fault.
    assert.equal(progress.alert?.observed, true, JSON.stringify(progress.alert));
    assert.deepEqual(progress.alert?.receivers, ['email']);
    assert.match(progress.alert?.labels?.subject ?? '', /\[TRAINING\] Incident INC-\S+ declared \(sev3, vault\)/);
    assert.ok(result.detectMs! >= 0 && result.rtoMs! > 0, JSON.stringify(result));

    // The incident is over (the next drill's precondition), and it was a training one.
    const incident = await client.workflow.getHandle(`${workflowId}-incident`).describe();
    assert.equal(incident.status.name, 'COMPLETED');

    const s3 = buildS3Client(cfg.s3);
    const get = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: key }))).Body!.transformToString();
    const report = JSON.parse(await get(result.reportKeys!.json)) as DrDrillReport;
    assert.equal(report.scenario, 'credential-compromise');
    const c = report.credential!;
    assert.deepEqual([c.credentialClass, c.scope, c.versionBefore, c.versionAfter], ['approle-secret-id', 'vaultdr-drill', before.metadata.version, after.metadata.version]);
    assert.deepEqual([c.rotation?.rotated, c.rotation?.newVerified, c.rotation?.oldRefused, c.newWorks, c.oldRefused], [true, true, true, true, true]);
    assert.deepEqual(c.responderActions, ['acknowledge', 'approveContainment', 'approveNotice', 'closeIncident']);
    assert.deepEqual([c.tenants, c.noticesSent, c.noticesTraining], [2, 2, true]);
    assert.ok(c.rotationMs! > 0);
    assert.deepEqual([...new Set(report.timeline.map((e) => e.kind))].filter((k) => k !== 'step').sort(), ['alert', 'fault', 'recovered', 'revert']);
    const md = await get(result.reportKeys!.markdown);
    assert.match(md, /\| RTO \(declared → rotation verified by the incident\) \| \d+\.\d\d s \| 30 min \| within target \|/);
    assert.match(md, /\| drill probe: leaked secret-id \(KV version \d+\) refused \| refused \| refused \| held \|/);
    const html = await get(result.reportKeys!.html);
    assert.match(html, /<svg [^>]*role="img"/);

    // One TRAINING notice per tenant in Mailpit, and the report at the distribution list.
    const all = await mailpitMessages();
    const notices = all.filter((m) => m.To.some((t) => t.Address.includes(token) && !t.Address.startsWith('dr-drills')));
    assert.deepEqual(notices.map((m) => m.To[0]!.Address).sort(), tenants.map((t) => t.noticeEmail).sort());
    for (const n of notices) assert.match(n.Subject, /^\[TRAINING\] Notice of Data Breach/);
    let mail;
    for (let i = 0; i < 40 && !mail; i++) {
      mail = (await mailpitMessages()).find((m) => m.Subject.includes(result.drillId) && m.To.some((t) => t.Address === `dr-drills+${token}@localhost`));
      if (!mail) await sleep(250);
    }
    assert.ok(mail, 'the report reached the drill distribution list');

    // Neither secret-id nor any stack secret in the drill's, the incident's or the rotation's history, the notices or the report.
    const texts = [...histories.flatMap((t) => [t.raw, ...t.decoded]), ...(await Promise.all(notices.map((n) => mailpitText(n.ID)))), md, html].join('\n');
    for (const s of [...stackSecrets(), { name: 'leaked secret-id', value: old.secret_id }, { name: 'new secret-id', value: after.data.secret_id }]) assert.ok(!texts.includes(s.value), `${s.name} found in a history, a notice or the report`);
    assert.deepEqual([...new Set(histories[0]!.activityTypes)].sort(), ['awaitDeclaredMail', 'checkDrillCredential', 'checkDrillPreconditions', 'closeTrainingIncident', 'listFindingsToRetest', 'mailDrillReport', 'publishDrDrillReport', 'respondToTrainingIncident', 'verifyDrillCredential']);
    process.stdout.write(`      measured: detect ${(result.detectMs! / 1000).toFixed(2)} s, rotation ${(c.rotationMs! / 1000).toFixed(2)} s, RTO ${(result.rtoMs! / 1000).toFixed(2)} s, revert ${(report.revertMs! / 1000).toFixed(2)} s, drill wall ${(wallMs / 1000).toFixed(1)} s\n`);

    writeCommittedReport(report, html);
  });

  it('refuses a target not marked drillable, and a drill credential that does not log in; no incident is declared', async () => {
    const notDrillable: Config = { ...cfg, drills: { ...cfg.drills, drillableTargets: [] } };
    await withWorker(notDrillable, async () => {
      const f = await failureOf(start('drdrill-cred-nd', { scenario: 'credential-compromise' }, notDrillable).then((h) => h.result()));
      assert.equal(f.type, 'DrillRefused');
      assert.match(f.message, /its target credential-class is not marked drillable/);
    });
    // A drill role with no stored secret-id: the steady state does not hold.
    const noCredential: Config = { ...cfg, drills: { ...cfg.drills, credentialScope: `vaultdr-drill-missing-${token}` } };
    await withWorker(noCredential, async () => {
      const h = await start('drdrill-cred-unsteady', { scenario: 'credential-compromise' }, noCredential);
      const f = await failureOf(h.result());
      assert.equal(f.type, 'DrillSteadyStateNotHolding');
      assert.match(f.message, /steady state does not hold, nothing injected: .*holds no role_id\/secret_id/);
      const p = (await h.query('progress')) as DrDrillProgress;
      assert.ok(!p.completed.includes('injectFault'), JSON.stringify(p.completed));
      await assert.rejects(client.workflow.getHandle(`${h.workflowId}-incident`).describe(), /not found/i);
    });
  });
});
