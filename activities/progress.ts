// Heartbeats on progress for activities that move bytes (snapshot upload, verification download,
// restore). A heartbeat goes out only when bytes moved since the last one, so a stalled stream
// stops heartbeating and Temporal ends the attempt at the heartbeat timeout (a timer heartbeat
// would keep a dead transfer "alive" for hours). The same watch also fails the stream in this
// process when nothing moved for the stall limit (the activity's heartbeat timeout), so a frozen
// socket does not hold memory, a file descriptor and a worker slot until the start-to-close timeout.
import { Context } from '@temporalio/activity';

export class StreamStalled extends Error {
  override name = 'StreamStalled';
}

export interface ProgressWatch {
  /** Stops heartbeats and the stall watch. */
  stop(): void;
}

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** No heartbeat timeout (outside an activity: CLI, bench): the stall limit. */
export const DEFAULT_STALL_MS = 60_000;

/**
 * Watches a byte counter: heartbeats `details()` when it moved, calls `onStall` once when it did not
 * move for `stallMs` (default: the activity's heartbeat timeout, else 60 s).
 */
export function watchProgress(opts: { bytes: () => number; details: () => unknown; onStall: (err: StreamStalled) => void; what: string; stallMs?: number }): ProgressWatch {
  const ctx = activityContext();
  const stallMs = opts.stallMs ?? (ctx?.info.heartbeatTimeoutMs || DEFAULT_STALL_MS);
  // Check often enough that a moving stream heartbeats several times per heartbeat timeout.
  const everyMs = Math.max(100, Math.min(2000, Math.floor(stallMs / 4)));
  let last = opts.bytes();
  let lastMove = Date.now();
  ctx?.heartbeat(opts.details());
  const timer = setInterval(() => {
    const now = opts.bytes();
    if (now !== last) {
      last = now;
      lastMove = Date.now();
      ctx?.heartbeat(opts.details());
    } else if (Date.now() - lastMove >= stallMs) {
      clearInterval(timer);
      opts.onStall(new StreamStalled(`${opts.what}: no byte moved for ${Math.round(stallMs / 1000)}s (stalled at ${now} bytes)`));
    }
  }, everyMs);
  return { stop: () => clearInterval(timer) };
}
