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
