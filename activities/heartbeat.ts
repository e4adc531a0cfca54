// Periodic heartbeats for long transfers: a worker that is alive but waiting (S3 busy with a large
// part, a slow snapshot start) must not be mistaken for a dead one; the byte offset goes along.
import { Context } from '@temporalio/activity';

export function keepHeartbeating(details: () => unknown, everyMs = 5000): () => void {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  return () => clearInterval(timer);
}

/** Runs `run` with periodic heartbeats, so a worker that dies during it is noticed in one heartbeat timeout. */
export async function heartbeating<T>(stage: string, run: () => Promise<T>): Promise<T> {
  const stop = keepHeartbeating(() => ({ stage }));
  try {
    return await run();
  } finally {
    stop();
  }
}

/**
 * Wraps the named activities of a group with `heartbeating`, so they can run under a heartbeat
 * timeout: a worker killed during a short S3 or Vault step costs one heartbeat timeout (20 s)
 * instead of the step's whole start-to-close timeout (2 min).
 */
export function withHeartbeats<T extends Record<string, (...args: never[]) => Promise<unknown>>>(group: T, names: readonly (keyof T & string)[]): T {
  const out = { ...group };
  for (const name of names) {
    const fn = group[name];
    // The CLI and the bench call some of these directly, outside any activity: no heartbeats there.
    out[name] = ((...args: Parameters<typeof fn>) => (inActivity() ? heartbeating(name, () => fn(...args)) : fn(...args))) as T[typeof name];
  }
  return out;
}

function inActivity(): boolean {
  try {
    Context.current();
    return true;
  } catch {
    return false;
  }
}
