// Monitoring: the rule files (promtool unit tests), the Alertmanager routing (amtool), the worker's
// /metrics against the real stack, and a real Prometheus scraping the worker and OpenBao.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { Server } from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { BackupResult } from '../common/backup';
import { connectClient } from '../client/connect';
import { buildClients } from '../infra/clients';
import type { Config } from '../infra/config';
import { registerStateGauges, startMetricsServer } from '../infra/metrics';
import { rootToken, unsealBao } from '../stack/stack';
import { renderAlertmanagerConfig, renderPrometheusConfig } from '../stack/monitoring';
import * as crypto from 'node:crypto';
import { bao, mailpitMessages } from './helpers/inspect';
import { startSaasReceiver } from './helpers/receivers';
import { ensureStack, PROJECT_ROOT, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';

const DEPLOY = path.join(PROJECT_ROOT, 'deploy');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tool(cmd: string, args: string[]) {
  const res = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (res.error) assert.fail(`${cmd} is not installed (scripts/ensure-deps.sh --test-tools installs Debian's prometheus and prometheus-alertmanager): ${res.error.message}`);
  return { code: res.status, out: `${res.stdout}${res.stderr}` };
}

function sample(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('monitoring configuration', function () {
  this.timeout(120_000);

  it('every alert rule fires and stays quiet as its promtool unit tests expect', () => {
    const r = tool('promtool', ['test', 'rules', path.join(DEPLOY, 'prometheus', 'rules', 'vault-dr.rules.test.yml')]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });

  it('every alert has a severity and a runbook link, and each is unit-tested', () => {
    const rules = fs.readFileSync(path.join(DEPLOY, 'prometheus', 'rules', 'vault-dr.rules.yml'), 'utf8');
    const tests = fs.readFileSync(path.join(DEPLOY, 'prometheus', 'rules', 'vault-dr.rules.test.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    assert.ok(alerts.length >= 12, alerts.join());
    for (const a of ['VaultSealed', 'VaultNoActiveNode', 'VaultRaftPeerDown', 'BackupStale', 'BackupFailed', 'RestoreValidationFailed', 'RestoreValidationStale', 'RestoreRTOAboveTarget', 'RestoreRPOAboveTarget', 'ReplicationLagHigh']) assert.ok(alerts.includes(a), a);
    for (const block of rules.split('- alert: ').slice(1)) {
      const name = block.split('\n')[0]!;
      assert.match(block, /severity: (critical|warning|info)/, name);
      assert.match(block, /runbook_url: docs\/runbooks\/\S+\.md/, name);
      assert.match(tests, new RegExp(`alertname: ${name}\\b`), `${name} has no promtool test`);
      const runbook = /runbook_url: (docs\/runbooks\/[^#\s]+)/.exec(block)![1]!;
      assert.ok(fs.existsSync(path.join(PROJECT_ROOT, runbook)), `${name}: ${runbook} does not exist`);
    }
  });

  it('the Prometheus config is valid', () => {
    const r = tool('promtool', ['check', 'config', '--syntax-only', path.join(DEPLOY, 'prometheus', 'prometheus.yml')]);
    assert.equal(r.code, 0, r.out);
  });

  it('Alertmanager routes critical → PagerDuty + Slack + e-mail, warning → Slack + e-mail, info → e-mail', () => {
    const file = path.join(DEPLOY, 'alertmanager', 'alertmanager.yml');
    assert.equal(tool('amtool', ['check-config', file]).code, 0);
    const route = (labels: string) => tool('amtool', ['config', 'routes', 'test', '--config.file', file, '--verify.receivers', labels === 'severity=critical' ? 'critical' : labels === 'severity=warning' ? 'warning' : 'email', labels]);
    for (const l of ['severity=critical', 'severity=warning', 'severity=info']) assert.equal(route(l).code, 0, `${l}: ${route(l).out}`);
    const cfg = fs.readFileSync(file, 'utf8');
    const receiver = (name: string) => cfg.split(`- name: ${name}\n`)[1]!.split('\n  - name:')[0]!;
    assert.match(receiver('critical'), /pagerduty_configs[\s\S]*slack_configs[\s\S]*email_configs/);
    assert.match(receiver('warning'), /slack_configs[\s\S]*email_configs/);
    assert.doesNotMatch(receiver('warning'), /pagerduty/);
    assert.match(receiver('email'), /email_configs/);
    assert.doesNotMatch(cfg, /hooks\.slack\.com|routing_key:/, 'secrets must come from files');
  });

  it('amtool rejects a broken routing config (the check can fail)', () => {
    const bad = path.join(os.tmpdir(), `am-bad-${process.pid}.yml`);
    fs.writeFileSync(bad, fs.readFileSync(path.join(DEPLOY, 'alertmanager', 'alertmanager.yml'), 'utf8').replace('receiver: critical', 'receiver: nobody'));
    try {
      const r = tool('amtool', ['check-config', bad]);
      assert.notEqual(r.code, 0);
      assert.match(r.out, /undefined receiver "nobody"/);
    } finally {
      fs.rmSync(bad, { force: true });
    }
  });
});

describe('worker metrics with a real Prometheus (real stack)', function () {
  this.timeout(300_000);
  let cfg: Config;
  let client: Client;
  let server: Server;
  const port = 19465;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('metrics'));
    client = await connectClient(cfg);
    const { s3, bao: baoClient } = buildClients(cfg);
    registerStateGauges({ cfg, s3, bao: baoClient, cacheMs: 0 });
    server = await startMetricsServer(`127.0.0.1:${port}`);
  });
  after(async () => {
    server?.close();
    await client?.connection.close();
  });

  const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  it('exports backup state, restore targets and live OpenBao state after a backup', async () => {
    const r = (await withWorker(cfg, async () => (await client.workflow.start('backupVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `metrics-backup-${Date.now()}`, args: [{ prune: false }] })).result())) as BackupResult;
    const text = await scrape();
    const last = sample(text, 'vaultdr_backup_last_success_timestamp_seconds');
    assert.ok(last && Math.abs(last - Date.now() / 1000) < 120, `last success ${last}`);
    assert.equal(sample(text, 'vaultdr_backup_last_size_bytes'), r.objectBytes);
    assert.ok((sample(text, 'vaultdr_backups_verified') ?? 0) >= 1);
    assert.equal(sample(text, 'vaultdr_object_store_up'), 1);
    assert.equal(sample(text, 'vaultdr_vault_up'), 1);
    assert.equal(sample(text, 'vaultdr_vault_sealed'), 0);
    assert.equal(sample(text, 'vaultdr_vault_active'), 1);
    assert.equal(sample(text, 'vaultdr_restore_rto_target_seconds'), 900);
  });

  it('shows a sealed OpenBao within seconds', async () => {
    assert.equal((await bao('PUT', 'sys/seal')).status, 204);
    try {
      await sleep(2500);
      const text = await scrape();
      assert.equal(sample(text, 'vaultdr_vault_sealed'), 1);
      assert.equal(sample(text, 'vaultdr_vault_active'), 0);
    } finally {
      await unsealBao();
    }
  });

  /** A real Prometheus with the repo's config and rules, pointed at the local stack. */
  async function startPrometheus(dir: string, promPort: number, alertmanager: string) {
    fs.mkdirSync(dir, { recursive: true });
    const tokenFile = path.join(dir, 'openbao-token');
    fs.writeFileSync(tokenFile, rootToken(), { mode: 0o600 });
    const config = renderPrometheusConfig({ interval: '1s', workerTargets: [`127.0.0.1:${port}`], openbaoTarget: '127.0.0.1:8200', openbaoTokenFile: tokenFile, alertmanager });
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), config);
    const proc = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    const query = async (q: string) => {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
      return ((await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    };
    const deadline = Date.now() + 60_000;
    let up: { metric: Record<string, string>; value: [number, string] }[] = [];
    while (Date.now() < deadline) {
      up = await query('up').catch(() => []);
      if (up.length === 2 && up.every((u) => u.value[1] === '1')) break;
      await sleep(500);
    }
    return { proc, query, up };
  }

  it('a real Prometheus scrapes the worker and OpenBao and evaluates the vault-dr rules', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-prom-'));
    const promPort = 19090;
    let prom: ChildProcess | undefined;
    try {
      const started = await startPrometheus(dir, promPort, '127.0.0.1:1');
      prom = started.proc;
      assert.deepEqual(started.up.map((u) => `${u.metric.job}=${u.value[1]}`).sort(), ['openbao=1', 'vault-dr=1']);
      assert.equal((await started.query('vault_core_unsealed{cluster!=""}'))[0]?.value[1], '1');
      assert.equal((await started.query('vaultdr_vault_sealed'))[0]?.value[1], '0');
      const rules = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
      const all = rules.data.groups.flatMap((g) => g.rules);
      assert.ok(all.length >= 12);
      for (const r of all) assert.notEqual(r.health, 'err', `${r.name} fails to evaluate`);
    } finally {
      prom?.kill('SIGTERM');
      await sleep(500);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every Grafana panel query evaluates and returns data after a backup and a restore validation', async () => {
    // A staging restore validation, so the restore panels have a value on a fresh stack too.
    const restore = (await withWorker(cfg, () =>
      client.workflow.execute('restoreVault', { taskQueue: cfg.temporal.taskQueue, workflowId: `dashboards-restore-${Date.now()}`, args: [{ backupId: 'latest', target: 'staging', reason: 'dashboard query test' }] }),
    )) as { status: string };
    assert.equal(restore.status, 'verified');
    const provisioning = fs.readFileSync(path.join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8');
    const uid = /uid: (\S+)/.exec(provisioning)![1]!;
    // HA dashboards (ha-*.json) need the HA harness: test/haPostgres.test.ts runs ha-postgres.json's queries,
    // test/haFailover.test.ts ha-overview.json's.
    const dashboards = fs.readdirSync(path.join(DEPLOY, 'grafana', 'dashboards')).filter((f) => f.endsWith('.json') && !f.startsWith('ha-'));
    assert.ok(dashboards.length >= 2, dashboards.join());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-dash-'));
    let prom: ChildProcess | undefined;
    try {
      const started = await startPrometheus(dir, 19092, '127.0.0.1:1');
      prom = started.proc;
      await sleep(4000); // a few 1 s scrapes, so rate() and increase() have two samples
      const failures: string[] = [];
      let queries = 0;
      for (const file of dashboards) {
        const d = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'grafana', 'dashboards', file), 'utf8')) as { uid: string; panels: { title: string; datasource: { uid: string }; targets: { expr: string; datasource: { uid: string } }[] }[] };
        assert.ok(d.uid && d.panels.length > 0, file);
        for (const panel of d.panels) {
          assert.equal(panel.datasource.uid, uid, `${file} / ${panel.title}: datasource is not the provisioned one`);
          assert.ok(panel.targets.length > 0, `${file} / ${panel.title} has no query`);
          for (const t of panel.targets) {
            queries++;
            // Grafana's built-in variables, as Grafana would expand them for a 1 h view.
            const expr = t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$__range', '1h');
            const res = (await (await fetch(`http://127.0.0.1:19092/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { status: string; error?: string; data?: { result: unknown[] } };
            if (res.status !== 'success') failures.push(`${file} / ${panel.title}: ${t.expr}: ${res.error}`);
            else if (!res.data?.result.length) failures.push(`${file} / ${panel.title}: ${t.expr}: no data`);
          }
        }
      }
      assert.deepEqual(failures, [], `${failures.length} of ${queries} panel queries failed`);
      process.stdout.write(`      (${queries} panel queries in ${dashboards.length} dashboards all returned data)\n`);
    } finally {
      prom?.kill('SIGTERM');
      await sleep(500);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('end to end: sealing OpenBao reaches e-mail, Slack and PagerDuty through Prometheus and Alertmanager', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-am-'));
    const receiver = await startSaasReceiver();
    const amPort = 19093;
    fs.writeFileSync(path.join(dir, 'slack_webhook_url'), `${receiver.url}/services/T000/B000/XXXX`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'pagerduty_routing_key'), crypto.randomBytes(16).toString('hex'), { mode: 0o600 });
    // The repo's routing, with the local stack's relay and the local SaaS receiver.
    const amConfig = renderAlertmanagerConfig({
      smarthost: '127.0.0.1:1025',
      to: 'ops@localhost',
      slackWebhookUrlFile: path.join(dir, 'slack_webhook_url'),
      pagerdutyRoutingKeyFile: path.join(dir, 'pagerduty_routing_key'),
      pagerdutyUrl: `${receiver.url}/v2/enqueue`,
    });
    fs.writeFileSync(path.join(dir, 'alertmanager.yml'), amConfig);
    const am = spawn('prometheus-alertmanager', [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'am')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address='], { stdio: 'ignore' });
    let prom: ChildProcess | undefined;
    try {
      prom = (await startPrometheus(path.join(dir, 'prom'), 19091, `127.0.0.1:${amPort}`)).proc;
      const before = new Set((await mailpitMessages()).map((m) => m.ID));
      const sealedAt = Date.now();
      assert.equal((await bao('PUT', 'sys/seal')).status, 204);
      let mail: { Subject: string } | undefined;
      while (!mail && Date.now() - sealedAt < 150_000) {
        await sleep(1000);
        mail = (await mailpitMessages()).find((m) => !before.has(m.ID) && /VaultSealed/.test(m.Subject));
      }
      const seconds = (Date.now() - sealedAt) / 1000;
      assert.ok(mail, 'no VaultSealed e-mail within 150 s');
      // for: 1m, group_wait 10s, 1 s scrape/evaluation: the mail is due after about 70 s.
      assert.ok(seconds >= 60 && seconds < 120, `e-mail after ${seconds}s`);
      for (let i = 0; i < 20 && receiver.received.length < 2; i++) await sleep(500);
      assert.ok(receiver.received.some((r) => r.service === 'slack' && /VaultSealed/.test(r.body.text ?? JSON.stringify(r.body))), 'no Slack message');
      const page = receiver.received.find((r) => r.service === 'pagerduty');
      assert.ok(page, 'no PagerDuty event');
      assert.equal(page.body.event_action, 'trigger');
      assert.equal(page.body.payload.severity, 'critical', 'PagerDuty urgency rules key on the severity');
      process.stdout.write(`      (seal → alert e-mail took ${seconds.toFixed(0)} s)\n`);
    } finally {
      await unsealBao();
      prom?.kill('SIGTERM');
      am.kill('SIGTERM');
      await receiver.close();
      await sleep(500);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
