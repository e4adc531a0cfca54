// Custodian share intake: during a restore that uses the escrow key, custodians hand their share
// files to the restore worker directly (`vaultdr keys submit-share`, HTTP with a bearer token), never
// through Temporal. When the threshold is reached the worker rebuilds the key in memory, checks its
// fingerprint against the backup's recipients, and signals the workflow — with counts only.
// The intake listens on its own address (restore.shareIntakeListen) in the restore role's process,
// with its own tokens: a custodian's token cannot decode workflow history at the codec endpoint.
import { readBody } from '../http';
import * as http from 'node:http';
import type { ShareFile } from '../crypto/escrow';
import { tokenMatches } from '../temporal/codecAuth';
import { isShareFile, reconstructFromSharesData } from '../crypto/escrow';

export interface IntakeStatus {
  workflowId: string;
  received: number;
  threshold: number;
  keyId: string;
  ready: boolean;
  /** Whether the waiting restore has been told (the signal is re-sent on the next submission if not). */
  signalled?: boolean;
  /** Shares found corrupt once the key was rebuilt without them (by the index printed on the share file). */
  rejected?: { index: number; reason: string }[];
}

/** Threshold-sized subsets tried when the shares received do not rebuild the key together. */
const MAX_SUBSETS = 2000;

function* subsets<T>(items: T[], k: number, start = 0, prefix: T[] = []): Generator<T[]> {
  if (prefix.length === k) {
    yield prefix;
    return;
  }
  for (let i = start; i <= items.length - (k - prefix.length); i++) yield* subsets(items, k, i + 1, [...prefix, items[i]!]);
}

export class ShareIntake {
  private readonly shares = new Map<string, ShareFile[]>();
  private readonly keys = new Map<string, Buffer>();
  /** Key ids a share may belong to, per workflow (the backup's recipients). */
  private readonly expected = new Map<string, string[]>();
  private readonly signalled = new Set<string>();
  private readonly rejected = new Map<string, { index: number; reason: string }[]>();

  constructor(private readonly onReady: (workflowId: string, status: IntakeStatus) => Promise<void>) {}

  open(workflowId: string, recipientKeyIds: string[]): IntakeStatus {
    this.expected.set(workflowId, recipientKeyIds);
    return this.status(workflowId);
  }

  status(workflowId: string): IntakeStatus {
    const list = this.shares.get(workflowId) ?? [];
    const rejected = this.rejected.get(workflowId) ?? [];
    return {
      workflowId,
      received: list.length,
      threshold: list[0]?.threshold ?? 0,
      keyId: list[0]?.keyId ?? '',
      ready: this.keys.has(workflowId),
      signalled: this.signalled.has(workflowId),
      ...(rejected.length ? { rejected } : {}),
    };
  }

  async submit(workflowId: string, share: ShareFile): Promise<IntakeStatus> {
    const expected = this.expected.get(workflowId);
    if (!expected) throw new Error(`no restore ${workflowId} is waiting for custodian shares on this worker`);
    // isShareFile also checks keyId is a fingerprint, so the messages below never echo other content.
    if (!isShareFile(share)) throw new Error('not a vault-dr share file');
    if (!expected.includes(share.keyId)) throw new Error(`this share belongs to key ${share.keyId}; the backup is encrypted for ${expected.join(', ')}`);
    const first = this.shares.get(workflowId)?.[0];
    if (first && first.keyId !== share.keyId) throw new Error(`this share belongs to key ${share.keyId}, earlier shares to ${first.keyId}`);
    const list = this.shares.get(workflowId) ?? [];
    if (!this.keys.has(workflowId) && !list.some((s) => s.share === share.share)) list.push(share);
    this.shares.set(workflowId, list);
    if (!this.keys.has(workflowId) && list.length >= share.threshold) {
      const key = await this.rebuild(workflowId, list, share.threshold);
      if (!key) {
        throw new Error(
          `the ${list.length} shares received do not rebuild key ${share.keyId}: at least one is corrupt or from another split; ` +
            `they are kept, and the key is rebuilt from any ${share.threshold} good ones as soon as enough good shares are in: submit another custodian's share`,
        );
      }
    }
    // Ready but the restore was never told (Temporal was unreachable): tell it now.
    if (this.keys.has(workflowId) && !this.signalled.has(workflowId)) {
      try {
        await this.onReady(workflowId, this.status(workflowId));
        this.signalled.add(workflowId);
      } catch (err) {
        throw new Error(`key rebuilt, but the restore could not be told (${(err as Error).message}); submit any share again to retry`);
      }
    }
    return this.status(workflowId);
  }

  /**
   * Rebuilds the key from the shares received: all of them first, else every threshold-sized
   * subset (bounded) until one rebuilds the right fingerprint. Shares that do not rebuild it with
   * good ones are then dropped as corrupt and reported.
   */
  private async rebuild(workflowId: string, list: ShareFile[], threshold: number): Promise<Buffer | undefined> {
    const attempt = async (shares: ShareFile[]) => (await reconstructFromSharesData(shares).catch(() => undefined))?.privateKey;
    let key = await attempt(list);
    let good: ShareFile[] = list;
    // With exactly `threshold` shares the only subset is the list just tried.
    if (!key && list.length > threshold) {
      let tried = 0;
      for (const subset of subsets(list, threshold)) {
        if (++tried > MAX_SUBSETS) break;
        key = await attempt(subset);
        if (key) {
          good = subset;
          break;
        }
      }
    }
    if (!key) return undefined;
    this.keys.set(workflowId, key);
    const base = good.slice(0, threshold - 1);
    const bad: ShareFile[] = [];
    for (const s of list.filter((x) => !good.includes(x))) {
      const k = await attempt([...base, s]);
      if (k) k.fill(0);
      else bad.push(s);
    }
    if (bad.length) {
      this.shares.set(workflowId, list.filter((s) => !bad.includes(s)));
      this.rejected.set(workflowId, bad.map((s) => ({ index: s.index, reason: `share ${s.index} of ${s.shares} does not rebuild key ${s.keyId} with the others: corrupt or from another split` })));
    }
    return key;
  }

  /** The rebuilt key for a workflow (a copy the caller zeroes), or undefined. */
  keyFor(workflowId: string): Buffer | undefined {
    const k = this.keys.get(workflowId);
    return k ? Buffer.from(k) : undefined;
  }

  /** Forget everything about a workflow (after the restore, success or not). */
  close(workflowId: string): void {
    this.keys.get(workflowId)?.fill(0);
    this.keys.delete(workflowId);
    this.shares.delete(workflowId);
    this.expected.delete(workflowId);
    this.signalled.delete(workflowId);
    this.rejected.delete(workflowId);
  }
}

/** A share file is a few hundred bytes; anything much larger is not one. */
const MAX_SHARE_BODY = 64 * 1024;

/**
 * The HTTP face of the intake: POST /shares/<workflowId> (a share file) and GET /shares/<workflowId>
 * (counts), bearer token always required, nothing else served (GET /health answers for probes).
 */
export function createShareIntakeServer(opts: { intake: ShareIntake; tokens: string[] }): http.Server {
  return http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const route = req.url?.split('?')[0] ?? '';
    if (route === '/health') return reply(200, { ok: true });
    const shareRoute = /^\/shares\/([A-Za-z0-9_.:-]{1,200})$/.exec(route);
    if (!shareRoute) return reply(404, { error: 'POST or GET /shares/<workflowId>' });
    const auth = req.headers.authorization ?? '';
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    if (!(bearer && tokenMatches(bearer, opts.tokens))) return reply(401, { error: 'a valid bearer token is required' });
    const workflowId = shareRoute[1]!;
    if (req.method === 'GET') return reply(200, opts.intake.status(workflowId));
    if (req.method !== 'POST') return reply(405, { error: 'GET or POST' });
    readBody(req, MAX_SHARE_BODY).then(
      (raw) => {
        if (res.headersSent) return;
        let share: ShareFile;
        try {
          share = JSON.parse(raw.toString('utf8')) as ShareFile;
        } catch {
          return reply(400, { error: 'body must be a share file (JSON)' });
        }
        opts.intake.submit(workflowId, share).then(
          (status) => reply(200, status),
          (err: Error) => reply(400, { error: err.message }),
        );
      },
      () => {
        reply(413, { error: 'body too large for a share file' });
        req.destroy();
      },
    );
  });
}
