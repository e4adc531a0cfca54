// Activities of the drillFinding workflow: the finding's durable record in the bucket.
import type { S3Client } from '@aws-sdk/client-s3';
import type { FindingRecord } from '../../common/drills';
import { FindingStore } from '../../infra/store/findings';

export const findingActivities = (deps: { s3: S3Client; bucket: string }) => {
  const store = new FindingStore(deps.s3, deps.bucket);
  return {
    /** Writes the finding's record (the whole record each time: idempotent, the newest wins). */
    async saveFinding(req: { record: FindingRecord }): Promise<{ key: string }> {
      return { key: await store.put(req.record) };
    },
  };
};

export type FindingActivities = ReturnType<typeof findingActivities>;
