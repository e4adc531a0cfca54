// The worker's Prometheus endpoint (/metrics). Backup and restore state is read from where it is
// durable — the manifests and the restore history in S3 — at scrape time (cached briefly), so a
// restarted worker reports the truth at once. Verified manifests are kept by id and ETag between
// refreshes (ManifestCache), so a refresh reads only new or rewritten manifests; the object
// checks still run on every refresh. OpenBao's seal/active state is probed live via the
// unauthenticated sys/health, so "sealed" is visible even when OpenBao's own metrics are not.
import * as http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BaoClient } from './vault/bao';
import type { Config } from './config';
import { loadDrState, type DrState } from './store/drState';
import { ManifestCache } from './store/catalog';
import { getJsonObject } from './store/objects';
import { DRILL_REPORT_PREFIX, type FailoverDrillResult } from '../common/ha';
import { FindingStore } from './store/findings';
import { isOverdue, type FindingRecord } from '../common/drills';

export interface MetricsDeps {
  cfg: Config;
  s3: S3Client;
  bao: BaoClient;
  cacheMs?: number;
  /** Verified manifests kept between refreshes (a refresh then reads only new or rewritten manifests); one per worker by default. */
  manifests?: ManifestCache;
  /** Where to register (default: the process's shared registry); a test serves a registry of its own. */
  registry?: Registry;
}

export interface VaultDrMetrics {
  registry: Registry;
  workflowFailures: Counter<'workflow' | 'step' | 'error_type'>;
  /** The same failures by workflow only, every known workflow present from 0 so a first failure is an increase. */
  workflowRunsFailed: Counter<'workflow'>;
  alertsSent: Counter<'severity' | 'channel' | 'outcome'>;
}

let shared: VaultDrMetrics | undefined;

const KNOWN_WORKFLOWS = ['backupVault', 'restoreVault', 'vaultHealthCheck', 'vaultHealthMonitor', 'alertDeliveryTest', 'drillFinding'];

/** Counters that activities increment (process-wide, one registry). */
export function metrics(): VaultDrMetrics {
  if (shared) return shared;
  const registry = new Registry();
  shared = {
    registry,
    workflowFailures: new Counter({ name: 'vaultdr_workflow_failures_total', help: 'Workflow runs that failed, by workflow, failed step and error type', labelNames: ['workflow', 'step', 'error_type'], registers: [registry] }),
    workflowRunsFailed: new Counter({ name: 'vaultdr_workflow_runs_failed_total', help: 'Workflow runs that failed, by workflow (starts at 0 for every workflow)', labelNames: ['workflow'], registers: [registry] }),
    alertsSent: new Counter({ name: 'vaultdr_alerts_total', help: 'Alerts handled by the notification layer', labelNames: ['severity', 'channel', 'outcome'], registers: [registry] }),
  };
  for (const workflow of KNOWN_WORKFLOWS) shared.workflowRunsFailed.inc({ workflow }, 0);
  return shared;
}

/** Registers the scrape-time gauges (backup/restore state from S3, live OpenBao state). */
export function registerStateGauges(deps: MetricsDeps): void {
  const registry = deps.registry ?? metrics().registry;
  collectDefaultMetrics({ register: registry, prefix: 'vaultdr_worker_' });
  const cacheMs = deps.cacheMs ?? 15_000;
  let cached: { at: number; state: Promise<DrState> } | undefined;
  const manifests = deps.manifests ?? new ManifestCache();
  const state = () => {
    if (!cached || Date.now() - cached.at > cacheMs) cached = { at: Date.now(), state: loadDrState(deps.s3, deps.cfg, manifests) };
    return cached.state;
  };
  const gauge = (name: string, help: string, pick: (s: DrState) => number | undefined) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const v = pick(await state());
        // No value (e.g. no backup yet) means no sample: absent() rules catch that explicitly.
        if (v === undefined) this.reset();
        else this.set(v);
      },
    });
  gauge('vaultdr_object_store_up', '1 when the backup bucket could be listed at the last scrape', (s) => (s.storeUp ? 1 : 0));
  gauge('vaultdr_backup_last_success_timestamp_seconds', 'Creation time of the newest verified backup', (s) => s.lastVerifiedAt);
  gauge('vaultdr_backup_last_size_bytes', 'Stored size of the newest verified backup', (s) => s.lastVerifiedBytes);
  gauge('vaultdr_backups_verified', 'Verified backups in the bucket', (s) => (s.storeUp ? s.verified : undefined));
  gauge('vaultdr_backups_unverified', 'Backups in the bucket that were never verified (never pruned automatically)', (s) => (s.storeUp ? s.unverified : undefined));
  // Restore metrics come from staging restores (weekly validation): a production restore's time
  // includes waiting for people to approve and unseal, so it is not a measure of RTO.
  gauge('vaultdr_restore_last_timestamp_seconds', 'When the last staging restore (validation) finished', (s) => s.lastValidation?.at);
  gauge('vaultdr_restore_last_success', '1 when the last staging restore was verified, 0 when it failed', (s) => (s.lastValidation ? (s.lastValidation.ok ? 1 : 0) : undefined));
  gauge('vaultdr_restore_last_rto_seconds', 'RTO of the last verified staging restore (restore start to secrets verified)', (s) => (s.lastValidation?.ok ? s.lastValidation.rto : undefined));
  gauge('vaultdr_restore_last_rpo_seconds', 'RPO of the last staging restore (snapshot time to restore start)', (s) => s.lastValidation?.rpo);
  gauge('vaultdr_restore_validation_last_success_timestamp_seconds', 'When a staging restore validation last succeeded', (s) => s.lastValidationOkAt);
  gauge('vaultdr_restore_validation_last_status', '1 when the newest staging restore validation succeeded, 0 when it failed', (s) => (s.lastValidation ? (s.lastValidation.ok ? 1 : 0) : undefined));
  new Gauge({ name: 'vaultdr_restore_rto_target_seconds', help: 'Configured RTO target', registers: [registry] }).set(deps.cfg.restore.rtoTargetSeconds);
  new Gauge({ name: 'vaultdr_restore_rpo_target_seconds', help: 'Configured RPO target', registers: [registry] }).set(deps.cfg.restore.rpoTargetSeconds);

  // The last failover drill (drills/failover/latest.json, written by publishDrillReport).
  let drillCache: { at: number; r: Promise<FailoverDrillResult | undefined> } | undefined;
  const drill = () => {
    if (!drillCache || Date.now() - drillCache.at > cacheMs) drillCache = { at: Date.now(), r: getJsonObject<FailoverDrillResult>(deps.s3, deps.cfg.s3.bucket, `${DRILL_REPORT_PREFIX}latest.json`).catch(() => undefined) };
    return drillCache.r;
  };
  new Gauge({
    name: 'vaultdr_ha_failover_gap_seconds',
    help: 'Last failover drill: time from the fault to the first acknowledged write through HAProxy, by target, fault and quantile (0.5, 0.95, 1 = max)',
    labelNames: ['target', 'fault', 'quantile'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of (await drill())?.stats ?? []) {
        this.set({ target: s.target, fault: s.fault, quantile: '0.5' }, s.p50Ms / 1000);
        this.set({ target: s.target, fault: s.fault, quantile: '0.95' }, s.p95Ms / 1000);
        this.set({ target: s.target, fault: s.fault, quantile: '1' }, s.maxMs / 1000);
      }
    },
  });
  new Gauge({
    name: 'vaultdr_ha_drill_lost_writes',
    help: 'Last failover drill: acknowledged writes missing afterwards, by target and fault (must be 0)',
    labelNames: ['target', 'fault'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of (await drill())?.stats ?? []) this.set({ target: s.target, fault: s.fault }, s.lostWrites);
    },
  });
  new Gauge({
    name: 'vaultdr_ha_drill_last_timestamp_seconds',
    help: 'When the last failover drill finished',
    registers: [registry],
    async collect() {
      const r = await drill();
      if (r) this.set(Date.parse(r.finishedAt) / 1000);
      else this.reset();
    },
  });
  // Drill findings (drills/findings/ in the bucket): open, and open past their due date.
  const findingStore = new FindingStore(deps.s3, deps.cfg.s3.bucket);
  let findingsCache: { at: number; list: Promise<FindingRecord[] | undefined> } | undefined;
  const findings = () => {
    if (!findingsCache || Date.now() - findingsCache.at > cacheMs) findingsCache = { at: Date.now(), list: findingStore.list().catch(() => undefined) };
    return findingsCache.list;
  };
  const findingGauge = (name: string, help: string, count: (f: FindingRecord) => boolean) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const list = await findings();
        // Unreadable findings: no sample (VaultDrMetricsDown / BackupStoreUnreachable say why), never a false 0.
        if (!list) this.reset();
        else this.set(list.filter(count).length);
      },
    });
  findingGauge('vaultdr_drill_findings_open', 'DR drill findings not yet resolved', (f) => f.status === 'open');
  findingGauge('vaultdr_drill_findings_overdue', 'DR drill findings still open after their due date', (f) => isOverdue(f, Date.now()));

  const vault = async () => deps.bao.health().catch(() => undefined);
  let vaultCache: { at: number; h: ReturnType<typeof vault> } | undefined;
  const vaultState = () => {
    if (!vaultCache || Date.now() - vaultCache.at > 2000) vaultCache = { at: Date.now(), h: vault() };
    return vaultCache.h;
  };
  const vaultGauge = (name: string, help: string, pick: (h: NonNullable<Awaited<ReturnType<typeof vault>>> | undefined) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(pick(await vaultState()));
      },
    });
  vaultGauge('vaultdr_vault_up', '1 when OpenBao answered sys/health', (h) => (h ? 1 : 0));
  vaultGauge('vaultdr_vault_sealed', '1 when OpenBao reports sealed (or cannot be reached)', (h) => (!h || h.sealed ? 1 : 0));
  vaultGauge('vaultdr_vault_active', '1 when the configured OpenBao address is the active node', (h) => (h && !h.sealed && !h.standby ? 1 : 0));
}

export function startMetricsServer(listen: string, registry: Registry = metrics().registry): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      },
      (err: Error) => {
        res.writeHead(500).end(err.message);
      },
    );
  });
  const [host, port] = listen.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => resolve(server));
  });
}
