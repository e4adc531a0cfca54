// The repo's Prometheus and Alertmanager configs (deploy/), rendered for a run outside
// docker-compose: service names become 127.0.0.1 ports and /run/secrets files become local files.
// One renderer for the local stack's long-running Prometheus/Alertmanager and for the tests'
// short-lived ones, so both run exactly the committed routing and rules.
import * as fs from 'node:fs';
import * as path from 'node:path';

const DEPLOY = path.resolve(__dirname, '..', '..', 'deploy');
export const PROMETHEUS_RULES = path.join(DEPLOY, 'prometheus', 'rules', 'vault-dr.rules.yml');

function replaceOnce(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`deploy config changed: "${from}" not found; update stack/monitoring.ts`);
  return text.split(from).join(to);
}

export interface PrometheusOptions {
  /** scrape and evaluation interval, e.g. "15s" (as committed) or "1s" in tests. */
  interval?: string;
  /** The worker processes serving /metrics (backup role: state gauges; notify role: failure and alert counters). */
  workerTargets: string[];
  openbaoTarget: string;
  openbaoTokenFile: string;
  alertmanager: string;
}

export function renderPrometheusConfig(o: PrometheusOptions): string {
  let c = fs.readFileSync(path.join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8');
  if (o.interval) {
    c = replaceOnce(c, 'scrape_interval: 15s', `scrape_interval: ${o.interval}`);
    c = replaceOnce(c, 'evaluation_interval: 15s', `evaluation_interval: ${o.interval}`);
  }
  c = replaceOnce(c, '- rules/vault-dr.rules.yml', `- ${PROMETHEUS_RULES}`);
  c = replaceOnce(c, "['worker-backup:9464', 'worker-notify:9464']", `[${o.workerTargets.map((t) => `'${t}'`).join(', ')}]`);
  c = replaceOnce(c, "'openbao:8200'", `'${o.openbaoTarget}'`);
  c = replaceOnce(c, '/run/secrets/openbao_metrics_token', o.openbaoTokenFile);
  return replaceOnce(c, "'alertmanager:9093'", `'${o.alertmanager}'`);
}

export interface AlertmanagerOptions {
  smarthost: string;
  to: string;
  slackWebhookUrlFile: string;
  pagerdutyRoutingKeyFile: string;
  /** Events API URL; the default is PagerDuty's own. */
  pagerdutyUrl?: string;
}

export function renderAlertmanagerConfig(o: AlertmanagerOptions): string {
  let c = fs.readFileSync(path.join(DEPLOY, 'alertmanager', 'alertmanager.yml'), 'utf8');
  c = replaceOnce(c, 'smtp_smarthost: mailpit:1025', `smtp_smarthost: ${o.smarthost}`);
  c = replaceOnce(c, '/run/secrets/slack_webhook_url', o.slackWebhookUrlFile);
  c = replaceOnce(c, 'routing_key_file: /run/secrets/pagerduty_routing_key', `routing_key_file: ${o.pagerdutyRoutingKeyFile}${o.pagerdutyUrl ? `\n        url: ${o.pagerdutyUrl}` : ''}`);
  return replaceOnce(c, 'to: ops@example.com', `to: ${o.to}`);
}
