// Custodian share intake: during a restore that uses the escrow key, custodians hand their share
// files to the restore worker directly (`vaultdr keys submit-share`, HTTP with a bearer token), never
// through Temporal. When the threshold is reached the worker rebuilds the key in memory, checks its
// fingerprint against the backup's recipients, and signals the workflow — with counts only.
import type { ShareFile } from './escrow';
import { reconstructFromSharesData } from './escrow';

export interface IntakeStatus {
  workflowId: string;
  received: number;
  threshold: number;
  keyId: string;
  ready: boolean;
}

export class ShareIntake {
  private readonly shares = new Map<string, ShareFile[]>();
  private readonly keys = new Map<string, Buffer>();
  /** Key ids a share may belong to, per workflow (the backup's recipients). */
  private readonly expected = new Map<string, string[]>();

  constructor(private readonly onReady: (workflowId: string, status: IntakeStatus) => Promise<void>) {}

  open(workflowId: string, recipientKeyIds: string[]): IntakeStatus {
    this.expected.set(workflowId, recipientKeyIds);
    return this.status(workflowId);
  }

  status(workflowId: string): IntakeStatus {
    const list = this.shares.get(workflowId) ?? [];
    return { workflowId, received: list.length, threshold: list[0]?.threshold ?? 0, keyId: list[0]?.keyId ?? '', ready: this.keys.has(workflowId) };
  }

  async submit(workflowId: string, share: ShareFile): Promise<IntakeStatus> {
    const expected = this.expected.get(workflowId);
    if (!expected) throw new Error(`no restore ${workflowId} is waiting for custodian shares on this worker`);
    if (share.format !== 'vault-dr-share/1' || typeof share.share !== 'string') throw new Error('not a vault-dr share file');
    if (!expected.includes(share.keyId)) throw new Error(`this share belongs to key ${share.keyId}; the backup is encrypted for ${expected.join(', ')}`);
    const first = this.shares.get(workflowId)?.[0];
    if (first && first.keyId !== share.keyId) throw new Error(`this share belongs to key ${share.keyId}, earlier shares to ${first.keyId}`);
    const list = this.shares.get(workflowId) ?? [];
    if (!list.some((s) => s.share === share.share)) list.push(share);
    this.shares.set(workflowId, list);
    if (!this.keys.has(workflowId) && list.length >= share.threshold) {
      const { privateKey } = await reconstructFromSharesData(list);
      this.keys.set(workflowId, privateKey);
      const st = this.status(workflowId);
      await this.onReady(workflowId, st);
      return st;
    }
    return this.status(workflowId);
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
  }
}
