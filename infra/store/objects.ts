// Small S3 helpers shared by activities and the CLI: JSON objects, listing, and whether the
// object version a backup manifest pins is still there and still the current one.
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** Reads a JSON object; undefined when it does not exist; other errors throw. */
export async function getJsonObject<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await res.Body!.transformToString()) as T;
  } catch (err) {
    if (statusOf(err) === 404 || (err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

export async function putJsonObject(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value, null, 2), ContentType: 'application/json' }));
}

/** Every key under a prefix (follows continuation tokens). */
export async function listAllKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return (await listAllObjects(s3, bucket, prefix)).map((o) => o.key);
}

/** Every object under a prefix with its ETag (changes whenever the object is written again). */
export async function listAllObjects(s3: S3Client, bucket: string, prefix: string): Promise<{ key: string; etag: string | undefined }[]> {
  const out: { key: string; etag: string | undefined }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    out.push(...(page.Contents ?? []).map((o) => ({ key: o.Key!, etag: o.ETag })));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/**
 * What became of the object version a manifest pins:
 * - intact: the pinned version exists and is the current one;
 * - overwritten: something wrote the key again (the pinned version may still exist, as noncurrent);
 * - pinned version missing: the pinned version was deleted (the current one, if any, is other data);
 * - deleted: the current version is a delete marker;
 * - unpinned: the manifest names no version (a bucket without versioning): nothing to compare.
 */
export type PinnedState =
  | { kind: 'intact' | 'unpinned' }
  | { kind: 'overwritten'; pinnedVersionId: string; currentVersionId: string }
  | { kind: 'pinned version missing'; pinnedVersionId: string }
  | { kind: 'deleted'; pinnedVersionId: string; pinnedExists: boolean };

const gone = (err: unknown) => {
  const status = statusOf(err);
  // 404 for a missing version; 400/405 for a version id the store does not know or a delete marker.
  return status === 404 || status === 400 || status === 405 || /NotFound|NoSuch/i.test((err as { name?: string }).name ?? '');
};

export async function pinnedObjectState(s3: S3Client, bucket: string, key: string, versionId: string | undefined): Promise<PinnedState> {
  if (!versionId) return { kind: 'unpinned' };
  let pinnedExists = true;
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  } catch (err) {
    if (!gone(err)) throw err;
    pinnedExists = false;
  }
  let current: string | undefined;
  try {
    current = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).VersionId;
  } catch (err) {
    if (!gone(err)) throw err;
    return { kind: 'deleted', pinnedVersionId: versionId, pinnedExists };
  }
  if (!pinnedExists) return { kind: 'pinned version missing', pinnedVersionId: versionId };
  if (current !== versionId) return { kind: 'overwritten', pinnedVersionId: versionId, currentVersionId: current ?? '(none)' };
  return { kind: 'intact' };
}

/** Writes a text object (a rendered report) with its content type. */
export async function putTextObject(s3: S3Client, bucket: string, key: string, body: string, contentType: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
}
