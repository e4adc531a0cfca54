// One failover round, target-neutral (any HaDriver): a writer keeps writing sequence-numbered
// records through HAProxy, the fault is injected once the writer is steady, the gap is the time
// from the injection to the first acknowledged write that STARTED after it, and every
// acknowledged write is read back afterwards. Healing is the caller's next step (driver.heal).
import type { HaDriver, HaFault, InjectedFault } from './driver';

export interface RoundOptions {
  round: string;
  /** Steady writes before the fault (ms). */
  warmupMs?: number;
  /** Keep writing this long after the first success, so "no write lost" covers the new leader too. */
  afterMs?: number;
  /** Give up waiting for a successful write after this long (the round then fails). */
  maxGapMs?: number;
  /** Pause after a failed write, so a dead endpoint is not hammered in a hot loop. */
  retryPauseMs?: number;
  /** The bench's floor: a second writer straight to the surviving nodes (excluding the faulted one). */
  direct?: (seq: number, excludeNode: string) => Promise<void>;
  /** Called after the fault is injected (the activity persists it so a retry heals first). */
  onInjected?: (f: InjectedFault) => void | Promise<void>;
  heartbeat?: (stage: string) => void;
}

export interface RoundMeasurement {
  round: string;
  injected: InjectedFault;
  /** Fault → first acknowledged write started after it, through HAProxy. undefined = none within maxGapMs. */
  gapMs?: number;
  /** The same for the direct writer, when there was one. */
  directGapMs?: number;
  writesAcked: number;
  writesFailed: number;
  /** Acknowledged sequence numbers not found when read back. Must be empty. */
  missing: number[];
  /** The first few distinct write errors seen during the gap (what a client sees). */
  clientErrors: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Writer {
  acked: number[];
  failed: number;
  errors: Set<string>;
  firstOkAfter?: number;
  stop: () => Promise<void>;
}

function startWriter(write: (seq: number) => Promise<void>, after: () => number | undefined, pauseMs: number): Writer {
  const w: Writer = { acked: [], failed: 0, errors: new Set(), stop: async () => undefined };
  let stopping = false;
  const loop = (async () => {
    let seq = 0;
    while (!stopping) {
      seq++;
      const started = Date.now();
      try {
        await write(seq);
        w.acked.push(seq);
        const at = after();
        if (at !== undefined && started >= at && w.firstOkAfter === undefined) w.firstOkAfter = Date.now();
      } catch (err) {
        w.failed++;
        if (w.errors.size < 5) w.errors.add((err as Error).message.replace(/\d{6}/g, 'N').slice(0, 200));
        await sleep(pauseMs);
      }
    }
  })();
  w.stop = async () => {
    stopping = true;
    await loop;
  };
  return w;
}

export async function runRound(driver: HaDriver, fault: HaFault, o: RoundOptions): Promise<RoundMeasurement> {
  const warmupMs = o.warmupMs ?? 1500;
  const afterMs = o.afterMs ?? 1000;
  const maxGapMs = o.maxGapMs ?? 60_000;
  const pause = o.retryPauseMs ?? 50;
  let injectedAt: number | undefined;
  const writer = startWriter((seq) => driver.write(o.round, seq), () => injectedAt, pause);
  let direct: Writer | undefined;
  let injected: InjectedFault;
  try {
    await sleep(warmupMs);
    o.heartbeat?.('injecting');
    if (writer.acked.length === 0) throw new Error(`no write was acknowledged in ${warmupMs} ms before the fault: the cluster is not taking writes (${[...writer.errors].join('; ')})`);
    injected = await driver.inject(fault);
    // The driver stamps `at` right before the signal or the step-down request, after its own
    // pre-checks: a write that started during those checks must not count as "after the fault".
    injectedAt = injected.at;
    await o.onInjected?.(injected);
    if (o.direct) {
      const exclude = fault === 'planned' ? '' : injected.node;
      direct = startWriter((seq) => o.direct!(seq, exclude), () => injectedAt, pause);
    }
    const deadline = injectedAt + maxGapMs;
    while (Date.now() < deadline && (writer.firstOkAfter === undefined || (direct && direct.firstOkAfter === undefined))) {
      o.heartbeat?.('waiting for the first write after the fault');
      await sleep(25);
    }
    if (writer.firstOkAfter !== undefined) await sleep(afterMs);
  } finally {
    await writer.stop();
    await direct?.stop();
  }
  o.heartbeat?.('reading back acknowledged writes');
  const missing = await driver.missing(o.round, writer.acked);
  return {
    round: o.round,
    injected: injected!,
    gapMs: writer.firstOkAfter !== undefined ? writer.firstOkAfter - injectedAt! : undefined,
    directGapMs: direct?.firstOkAfter !== undefined ? direct.firstOkAfter - injectedAt! : undefined,
    writesAcked: writer.acked.length,
    writesFailed: writer.failed,
    missing,
    clientErrors: [...writer.errors],
  };
}

/** p50/p95/max of a sample (nearest-rank percentiles), in the sample's unit. */
export function summarize(xs: number[]): { n: number; p50: number; p95: number; max: number; min: number } {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
  return { n: s.length, p50: rank(50), p95: rank(95), max: s[s.length - 1] ?? NaN, min: s[0] ?? NaN };
}
