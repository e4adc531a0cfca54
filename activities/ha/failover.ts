// Activities of the failoverDrill workflow (docs/runbooks/ha-failover.md). Every target goes
// through the HaDriver interface (infra/ha/driver.ts); the driver registry says which targets this
// worker can drill (activities/ha/drivers.ts). A fault injected by a
// round is written to a state file before anything else happens, so a worker killed mid-round
// heals it on the retry instead of injecting a second fault on top of the first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { failure } from '../../common/errors';
import { DRILL_REPORT_PREFIX, type ClusterHealth, type FailoverDrillResult, type RoundOutcome } from '../../common/ha';
import type { HaDriver, HaFault, HaTarget, InjectedFault } from '../../infra/ha/driver';
import { runRound } from '../../infra/ha/round';
import { renderDrillMarkdown } from '../../infra/ha/report';
import { keepHeartbeating } from '../heartbeat';

/** Builds a target's driver on demand (and only on the worker that holds its secrets). */
export type HaDriverRegistry = Partial<Record<HaTarget, () => HaDriver>>;

export interface HaActivityDeps {
  drivers: HaDriverRegistry;
  /** Where in-flight faults are recorded (one file per target); must survive a worker restart. */
  stateDir: string;
  s3: S3Client;
  bucket: string;
}


export const haActivities = (deps: HaActivityDeps) => {
  const pendingFile = (target: HaTarget) => path.join(deps.stateDir, 'drill-state', `pending-${target}.json`);

  async function withDriver<T>(target: HaTarget, fn: (d: HaDriver) => Promise<T>): Promise<T> {
    const make = deps.drivers[target];
    if (!make) {
      const known = Object.keys(deps.drivers).join(', ') || 'none';
      throw failure('HaDrillRefused', `targets: ${target} cannot be drilled by this worker: no ${target} HA driver is configured here (drivers present: ${known})${target === 'postgres' ? '; the PostgreSQL driver needs ha.harnessDir with its PostgreSQL half (npm run ha:up)' : ''}`);
    }
    const d = make();
    try {
      return await fn(d);
    } finally {
      await d.close().catch(() => undefined);
    }
  }

  /** Heals a fault an earlier, interrupted attempt left behind (recorded before it was injected... or right after). */
  async function healLeftover(d: HaDriver, target: HaTarget, timeoutMs: number): Promise<string | undefined> {
    const file = pendingFile(target);
    if (!fs.existsSync(file)) return undefined;
    const f = JSON.parse(fs.readFileSync(file, 'utf8')) as InjectedFault;
    await d.heal(f, timeoutMs);
    fs.rmSync(file, { force: true });
    return `${f.fault} of ${f.node} at ${new Date(f.at).toISOString()}`;
  }

  return {
    /** Every node, the leader and consensus health; refuses (non-retryable) when not fully healthy. */
    async checkClusterHealthy(req: { target: HaTarget; healTimeoutSeconds: number }): Promise<ClusterHealth> {
      return withDriver(req.target, async (d) => {
        const stop = keepHeartbeating(() => ({ stage: 'health' }), 5000);
        try {
          const healed = await healLeftover(d, req.target, req.healTimeoutSeconds * 1000);
          if (healed) Context.current().log.warn('healed a fault left by an interrupted drill round', { target: req.target, healed });
          // A cluster still settling (a leader elected a moment ago, HAProxy about to mark it up) gets a few seconds.
          let h = await d.health();
          for (let i = 0; i < 20 && !h.healthy; i++) {
            await new Promise((r) => setTimeout(r, 500));
            h = await d.health();
          }
          if (!h.healthy) throw failure('HaDrillRefused', `${req.target}: refusing to drill a cluster that is not fully healthy: ${h.problems.join('; ')}`);
          return h;
        } finally {
          stop();
        }
      });
    },

    /** Heals whatever fault a failed or interrupted round left in place (none: nothing to do). */
    async healLeftoverFault(req: { target: HaTarget; healTimeoutSeconds: number }): Promise<{ healed?: string }> {
      return withDriver(req.target, async (d) => {
        const stop = keepHeartbeating(() => ({ stage: 'healing leftover fault' }), 2000);
        try {
          return { healed: await healLeftover(d, req.target, req.healTimeoutSeconds * 1000) };
        } finally {
          stop();
        }
      });
    },

    /**
     * One round: writes through HAProxy, the fault, the gap to the first acknowledged write, every
     * acknowledged write read back. Does not heal (healFault does), except a leftover of an
     * earlier attempt of this activity, which it heals before starting again.
     */
    async runFailoverRound(req: { drillId: string; target: HaTarget; fault: HaFault; round: number; maxGapSeconds: number; healTimeoutSeconds: number }): Promise<RoundOutcome> {
      const ctx = Context.current();
      return withDriver(req.target, async (d) => {
        let stage = 'starting';
        const stop = keepHeartbeating(() => ({ stage }), 2000);
        try {
          if (await healLeftover(d, req.target, req.healTimeoutSeconds * 1000)) stage = 'healed the fault of an interrupted attempt';
          // Each attempt writes its own series, so a retry's read-back never counts an earlier attempt's writes.
          const roundKey = `${req.drillId}-${req.target}-${req.fault}-${req.round}-a${ctx.info.attempt}`.replace(/[^A-Za-z0-9_-]/g, '_');
          const m = await runRound(d, req.fault, {
            round: roundKey,
            maxGapMs: req.maxGapSeconds * 1000,
            heartbeat: (s) => (stage = s),
            onInjected: (f) => {
              fs.mkdirSync(path.dirname(pendingFile(req.target)), { recursive: true });
              fs.writeFileSync(pendingFile(req.target), JSON.stringify(f));
            },
          });
          if (m.gapMs === undefined) {
            throw failure('HaFailoverTooSlow', `${req.target} ${req.fault} of ${m.injected.node}: no write was acknowledged through HAProxy within ${req.maxGapSeconds}s of the fault (${m.writesFailed} failed: ${m.clientErrors.join('; ')})`);
          }
          if (m.missing.length) {
            throw failure('HaWritesLost', `${req.target} ${req.fault} of ${m.injected.node}: ${m.missing.length} acknowledged write(s) missing afterwards (sequence ${m.missing.slice(0, 10).join(', ')}${m.missing.length > 10 ? ', …' : ''})`);
          }
          return { injected: m.injected, gapMs: m.gapMs, writesAcked: m.writesAcked, writesFailed: m.writesFailed, lost: m.missing.length, clientErrors: m.clientErrors };
        } finally {
          stop();
        }
      });
    },

    /** Restarts/continues the faulted node, waits until it rejoined and the whole cluster is healthy. */
    async healFault(req: { injected: InjectedFault; healTimeoutSeconds: number }): Promise<{ healMs: number }> {
      return withDriver(req.injected.target, async (d) => {
        const stop = keepHeartbeating(() => ({ stage: `healing ${req.injected.node}` }), 2000);
        const t0 = Date.now();
        try {
          await d.heal(req.injected, req.healTimeoutSeconds * 1000);
          fs.rmSync(pendingFile(req.injected.target), { force: true });
          return { healMs: Date.now() - t0 };
        } finally {
          stop();
        }
      });
    },

    /** The drill report as JSON and Markdown under drills/failover/<drillId>/, and drills/failover/latest.json for the metrics. */
    async publishDrillReport(req: { result: FailoverDrillResult; reason?: string }): Promise<{ jsonKey: string; markdownKey: string }> {
      const base = `${DRILL_REPORT_PREFIX}${req.result.drillId}/`;
      const json = JSON.stringify({ ...req.result, reason: req.reason }, null, 2) + '\n';
      await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: `${base}report.json`, Body: json, ContentType: 'application/json' }));
      await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: `${base}report.md`, Body: renderDrillMarkdown(req.result, req.reason), ContentType: 'text/markdown' }));
      await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: `${DRILL_REPORT_PREFIX}latest.json`, Body: json, ContentType: 'application/json' }));
      return { jsonKey: `${base}report.json`, markdownKey: `${base}report.md` };
    },
  };
};

export type HaActivities = ReturnType<typeof haActivities>;
