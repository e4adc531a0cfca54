// The worker's Prometheus endpoint (/metrics). Backup and restore state is read from where it is
// durable — the manifests and the restore history in S3 — at scrape time (cached briefly), so a
// restarted worker reports the truth at once. OpenBao's seal/active state is probed live via the
// unauthenticated sys/health, so "sealed" is visible even when OpenBao's own metrics are not.
import * as http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { backupActivities } from '../activities/backup';
import { restoreActivities } from '../activities/restore';
import type { BaoClient } from './bao';
import type { Config } from './config';

export interface MetricsDeps {
  cfg: Config;
  s3: S3Client;
  bao: BaoClient;
  cacheMs?: number;
}

export interface VaultDrMetrics {
  registry: Registry;
  workflowFailures: Counter<'workflow' | 'step' | 'error_type'>;
  alertsSent: Counter<'severity' | 'channel' | 'outcome'>;
}

let shared: VaultDrMetrics | undefined;

/** Counters that activities increment (process-wide, one registry). */
export function metrics(): VaultDrMetrics {
  if (shared) return shared;
  const registry = new Registry();
  shared = {
    registry,
    workflowFailures: new Counter({ name: 'vaultdr_workflow_failures_total', help: 'Workflow runs that failed, by workflow, failed step and error type', labelNames: ['workflow', 'step', 'error_type'], registers: [registry] }),
    alertsSent: new Counter({ name: 'vaultdr_alerts_total', help: 'Alerts handled by the notification layer', labelNames: ['severity', 'channel', 'outcome'], registers: [registry] }),
  };
  return shared;
}

/** Registers the scrape-time gauges (backup/restore state from S3, live OpenBao state). */
export function registerStateGauges(deps: MetricsDeps): void {
  const { registry } = metrics();
  collectDefaultMetrics({ register: registry, prefix: 'vaultdr_worker_' });
  const cacheMs = deps.cacheMs ?? 15_000;
  const backups = backupActivities({ bao: undefined as never, s3: deps.s3, cfg: deps.cfg });
  const restores = restoreActivities({ s3: deps.s3, cfg: deps.cfg });
  let cached: { at: number; state: Promise<State> } | undefined;

  interface State {
    storeUp: number;
    lastVerifiedAt?: number;
    lastVerifiedBytes?: number;
    verified: number;
    unverified: number;
    lastRestore?: { at: number; ok: number; rto?: number; rpo: number };
    lastValidationOkAt?: number;
    lastValidationStatus?: number;
  }

  const load = async (): Promise<State> => {
    try {
      const list = await backups.listBackups();
      const newest = list.find((b) => b.status === 'verified');
      const history = await restores.listRestoreHistory({ limit: 50 });
      const validations = history.filter((r) => r.target === 'staging');
      const lastOkValidation = validations.find((r) => r.status === 'verified');
      return {
        storeUp: 1,
        lastVerifiedAt: newest ? Date.parse(newest.createdAt) / 1000 : undefined,
        lastVerifiedBytes: newest?.objectBytes,
        verified: list.filter((b) => b.status === 'verified').length,
        unverified: list.filter((b) => b.status !== 'verified').length,
        lastRestore: history[0] ? { at: Date.parse(history[0].finishedAt) / 1000, ok: history[0].status === 'verified' ? 1 : 0, rto: history[0].rtoSeconds, rpo: history[0].rpoSeconds } : undefined,
        lastValidationOkAt: lastOkValidation ? Date.parse(lastOkValidation.finishedAt) / 1000 : undefined,
        lastValidationStatus: validations[0] ? (validations[0].status === 'verified' ? 1 : 0) : undefined,
      };
    } catch {
      return { storeUp: 0, verified: 0, unverified: 0 };
    }
  };
  const state = () => {
    if (!cached || Date.now() - cached.at > cacheMs) cached = { at: Date.now(), state: load() };
    return cached.state;
  };
  const gauge = (name: string, help: string, pick: (s: State) => number | undefined) =>
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
  gauge('vaultdr_object_store_up', '1 when the backup bucket could be listed at the last scrape', (s) => s.storeUp);
  gauge('vaultdr_backup_last_success_timestamp_seconds', 'Creation time of the newest verified backup', (s) => s.lastVerifiedAt);
  gauge('vaultdr_backup_last_size_bytes', 'Stored size of the newest verified backup', (s) => s.lastVerifiedBytes);
  gauge('vaultdr_backups_verified', 'Verified backups in the bucket', (s) => s.verified);
  gauge('vaultdr_backups_unverified', 'Backups in the bucket that were never verified (never pruned automatically)', (s) => s.unverified);
  gauge('vaultdr_restore_last_timestamp_seconds', 'When the last restore finished', (s) => s.lastRestore?.at);
  gauge('vaultdr_restore_last_success', '1 when the last restore was verified, 0 when it failed', (s) => s.lastRestore?.ok);
  gauge('vaultdr_restore_last_rto_seconds', 'RTO of the last verified restore (restore start to secrets verified)', (s) => (s.lastRestore?.ok ? s.lastRestore.rto : undefined));
  gauge('vaultdr_restore_last_rpo_seconds', 'RPO of the last restore (snapshot time to restore start)', (s) => s.lastRestore?.rpo);
  gauge('vaultdr_restore_validation_last_success_timestamp_seconds', 'When a staging restore validation last succeeded', (s) => s.lastValidationOkAt);
  gauge('vaultdr_restore_validation_last_status', '1 when the newest staging restore validation succeeded, 0 when it failed', (s) => s.lastValidationStatus);
  new Gauge({ name: 'vaultdr_restore_rto_target_seconds', help: 'Configured RTO target', registers: [registry] }).set(deps.cfg.restore.rtoTargetSeconds);
  new Gauge({ name: 'vaultdr_restore_rpo_target_seconds', help: 'Configured RPO target', registers: [registry] }).set(deps.cfg.restore.rpoTargetSeconds);

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

export function startMetricsServer(listen: string): Promise<http.Server> {
  const { registry } = metrics();
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
