// The repo's Alertmanager routing (deploy/alertmanager/alertmanager.yml), run by the real
// Alertmanager against the local Slack/PagerDuty stand-in: a critical alert must reach PagerDuty
// with payload.severity "critical" (Alertmanager's default is "error", which PagerDuty urgency
// rules keyed on "critical" miss), and a warning must not page. Alerts are posted to
// Alertmanager's API directly, so this needs neither OpenBao nor Prometheus.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../infra/vault/stagingVault';
import { renderAlertmanagerConfig } from '../stack/monitoring';
import { startSaasReceiver } from './helpers/receivers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Alertmanager → PagerDuty (real Alertmanager, PagerDuty stand-in)', () => {
  it('a critical alert pages with severity critical; a warning does not page', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-am-sev-'));
    const receiver = await startSaasReceiver();
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'slack_webhook_url'), `${receiver.url}/services/T000/B000/XXXX`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'pagerduty_routing_key'), crypto.randomBytes(16).toString('hex'), { mode: 0o600 });
    // E-mail goes nowhere (a closed port): this test reads what PagerDuty receives.
    fs.writeFileSync(
      path.join(dir, 'alertmanager.yml'),
      renderAlertmanagerConfig({ smarthost: '127.0.0.1:1', to: 'ops@localhost', slackWebhookUrlFile: path.join(dir, 'slack_webhook_url'), pagerdutyRoutingKeyFile: path.join(dir, 'pagerduty_routing_key'), pagerdutyUrl: `${receiver.url}/v2/enqueue` }),
    );
    const am = spawn('prometheus-alertmanager', [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'am')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='], { stdio: 'ignore' });
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 50 && !(await fetch(`${base}/-/ready`).then((r) => r.ok, () => false)); i++) await sleep(200);
      const tag = crypto.randomBytes(4).toString('hex');
      const alerts = [
        { labels: { alertname: `PagingCritical${tag}`, severity: 'critical' }, annotations: { summary: 'critical test alert' } },
        { labels: { alertname: `PagingWarning${tag}`, severity: 'warning' }, annotations: { summary: 'warning test alert' } },
      ];
      const posted = await fetch(`${base}/api/v2/alerts`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(alerts) });
      assert.equal(posted.status, 200, await posted.text());
      // group_wait is 10 s; Slack gets both (warning and critical) once the groups flush, and
      // PagerDuty the critical one. The receivers are notified independently, so wait for both,
      // then a little longer so that a wrongly paged warning would have arrived too.
      const count = (service: string) => receiver.received.filter((r) => r.service === service).length;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && (count('slack') < 2 || count('pagerduty') < 1)) await sleep(500);
      await sleep(3_000);
      const pages = receiver.received.filter((r) => r.service === 'pagerduty');
      assert.equal(pages.length, 1, `expected one PagerDuty event, got ${pages.length}: ${JSON.stringify(pages.map((p) => p.body.payload?.summary))}`);
      const page = pages[0]!.body;
      assert.equal(page.event_action, 'trigger');
      assert.match(String(page.payload.summary), new RegExp(`PagingCritical${tag}`));
      assert.equal(page.payload.severity, 'critical');
    } finally {
      am.kill('SIGTERM');
      await receiver.close();
      await sleep(300);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
