// Where drill findings live: one JSON record per finding under drills/findings/ in the backup
// bucket, written by the drillFinding workflow's activity at every change, read by the worker's
// /metrics (open and overdue findings) and by `vaultdr drill findings`.
import type { S3Client } from '@aws-sdk/client-s3';
import type { FindingRecord } from '../../common/drills';
import { getJsonObject, listAllKeys, putJsonObject } from './objects';

export const FINDINGS_PREFIX = 'drills/findings/';

export class FindingStore {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  key(findingId: string): string {
    if (!/^[A-Za-z0-9._-]{1,120}$/.test(findingId)) throw new Error(`finding id "${findingId.slice(0, 40)}" is not a plain name`);
    return `${FINDINGS_PREFIX}${findingId}.json`;
  }

  get(findingId: string): Promise<FindingRecord | undefined> {
    return getJsonObject<FindingRecord>(this.s3, this.bucket, this.key(findingId));
  }

  async put(record: FindingRecord): Promise<string> {
    const key = this.key(record.findingId);
    await putJsonObject(this.s3, this.bucket, key, record);
    return key;
  }

  /** Every finding, oldest first. */
  async list(): Promise<FindingRecord[]> {
    const keys = (await listAllKeys(this.s3, this.bucket, FINDINGS_PREFIX)).filter((k) => k.endsWith('.json')).sort();
    const out: FindingRecord[] = [];
    for (let i = 0; i < keys.length; i += 8) {
      const got = await Promise.all(keys.slice(i, i + 8).map((k) => getJsonObject<FindingRecord>(this.s3, this.bucket, k)));
      for (const g of got) if (g) out.push(g);
    }
    return out;
  }
}
