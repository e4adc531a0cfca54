// Activities that talk to the S3 object store.
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectStoreHealth } from '../../common/health';

export const objectStoreActivities = (deps: { s3: S3Client; bucket: string; endpoint: string }) => ({
  /** Bucket reachability: the store answers and the backup bucket exists and is accessible. */
  async checkObjectStore(): Promise<ObjectStoreHealth> {
    const report: ObjectStoreHealth = { status: 'healthy', endpoint: deps.endpoint, bucket: deps.bucket, bucketExists: false, problems: [] };
    try {
      await deps.s3.send(new HeadBucketCommand({ Bucket: deps.bucket }));
      report.bucketExists = true;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string; code?: string };
      const status = e.$metadata?.httpStatusCode;
      report.status = 'unhealthy';
      if (status === 404) report.problems.push(`bucket "${deps.bucket}" does not exist at ${deps.endpoint}`);
      else if (status === 403) report.problems.push(`access to bucket "${deps.bucket}" denied at ${deps.endpoint}`);
      else report.problems.push(`object store ${deps.endpoint} unreachable: ${e.code ?? e.name ?? ''} ${e.message ?? ''}`.trim());
    }
    return report;
  },
});

export type ObjectStoreActivities = ReturnType<typeof objectStoreActivities>;
