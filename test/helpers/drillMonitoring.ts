// A real Prometheus scraping the HA harness with the committed HA scrape jobs and rules (1 s scrape
// and evaluation interval) and a real Alertmanager with the committed routing, on free ports, for
// the drDrill tests: Slack, PagerDuty and SMTP point at closed ports, so nothing reaches the shared
// stack's sinks (the drill reads what Alertmanager received and routed, not the delivery).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort } from '../../infra/vault/stagingVault';
import { renderAlertmanagerConfig, renderPrometheusConfig } from '../../stack/monitoring';
import { HAPROXY_PORTS } from '../../stack/ha/haproxy';
import { metricsTokenFile, VAULT_NODES } from '../../stack/ha/vault';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DrillMonitoring {
  alertmanagerUrl: string;
  prometheusUrl: string;
  /** Stops both and waits for them to exit (Prometheus writes its TSDB while it shuts down). */
  stop(): Promise<void>;
}

/** Starts both under `dir` and returns once Alertmanager is ready and Prometheus scrapes every HA node. */
export async function startDrillMonitoring(dir: string): Promise<DrillMonitoring> {
  const [promPort, amPort] = [await freePort(), await freePort()];
  const procs: ChildProcess[] = [];
  fs.writeFileSync(path.join(dir, 'slack_url'), 'http://127.0.0.1:9/slack\n');
  fs.writeFileSync(path.join(dir, 'pd_key'), 'drill-test-routing-key\n');
  fs.writeFileSync(path.join(dir, 'alertmanager.yml'), renderAlertmanagerConfig({ smarthost: '127.0.0.1:9', to: 'ops@localhost', slackWebhookUrlFile: path.join(dir, 'slack_url'), pagerdutyRoutingKeyFile: path.join(dir, 'pd_key'), pagerdutyUrl: 'http://127.0.0.1:9/pd' }));
  procs.push(spawn('prometheus-alertmanager', [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'am')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address='], { stdio: 'ignore' }));
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    renderPrometheusConfig({
      interval: '1s',
      workerTargets: ['127.0.0.1:1'],
      openbaoTarget: '127.0.0.1:1',
      openbaoTokenFile: metricsTokenFile(),
      alertmanager: `127.0.0.1:${amPort}`,
      ha: { openbaoTargets: VAULT_NODES.map((n) => `127.0.0.1:${n.apiPort}`), tokenFile: metricsTokenFile(), haproxyTarget: `127.0.0.1:${HAPROXY_PORTS.stats}` },
    }),
  );
  procs.push(spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'prom')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' }));
  const stop = () =>
    Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null || p.signalCode !== null) return r();
            p.once('exit', () => r());
            p.kill('SIGTERM');
          }),
      ),
    ).then(() => undefined);
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${amPort}/-/ready`).then((r) => r.ok).catch(() => false);
      const up = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('count(up{job="openbao-ha"} == 1)')}`)
        .then(async (r) => ((await r.json()) as { data: { result: { value: [number, string] }[] } }).data.result[0]?.value[1])
        .catch(() => undefined);
      if (ok && up === String(VAULT_NODES.length)) break;
      if (i > 120) throw new Error(`monitoring not ready: alertmanager ${ok}, nodes up ${up}`);
      await sleep(500);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { alertmanagerUrl: `http://127.0.0.1:${amPort}`, prometheusUrl: `http://127.0.0.1:${promPort}`, stop };
}
