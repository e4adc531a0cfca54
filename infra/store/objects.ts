// Small S3 helpers shared by activities and the CLI: JSON objects, listing, and whether the
// object version a backup manifest pins is still there and still the current one.
import { GetObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

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

/** Every version of every key under a prefix: which version ids exist, and what is current. */
export interface KeyVersions {
  /** Version ids that hold data (delete markers excluded). */
  versions: Set<string>;
  /** The current entry: a version, or a delete marker; none when every version is gone. */
  latest?: { versionId: string; deleteMarker: boolean };
}

/** One ListObjectVersions pass over a prefix (follows the key and version markers). */
export async function listAllVersions(s3: S3Client, bucket: string, prefix: string): Promise<Map<string, KeyVersions>> {
  const out = new Map<string, KeyVersions>();
  const entry = (key: string) => {
    let e = out.get(key);
    if (!e) out.set(key, (e = { versions: new Set() }));
    return e;
  };
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    for (const v of page.Versions ?? []) {
      const e = entry(v.Key!);
      if (v.VersionId) e.versions.add(v.VersionId);
      if (v.IsLatest) e.latest = { versionId: v.VersionId ?? '', deleteMarker: false };
    }
    for (const d of page.DeleteMarkers ?? []) {
      const e = entry(d.Key!);
      if (d.IsLatest) e.latest = { versionId: d.VersionId ?? '', deleteMarker: true };
    }
    const more = page.IsTruncated && (page.NextKeyMarker || page.NextVersionIdMarker);
    keyMarker = more ? page.NextKeyMarker : undefined;
    versionMarker = more ? page.NextVersionIdMarker : undefined;
  } while (keyMarker || versionMarker);
  return out;
}

/** What became of a pinned version, from the key's versions (listAllVersions). */
export function pinnedObjectState(versions: KeyVersions | undefined, versionId: string | undefined): PinnedState {
  if (!versionId) return { kind: 'unpinned' };
  const pinnedExists = versions?.versions.has(versionId) ?? false;
  const latest = versions?.latest;
  if (!latest || latest.deleteMarker) return { kind: 'deleted', pinnedVersionId: versionId, pinnedExists };
  if (!pinnedExists) return { kind: 'pinned version missing', pinnedVersionId: versionId };
  if (latest.versionId !== versionId) return { kind: 'overwritten', pinnedVersionId: versionId, currentVersionId: latest.versionId || '(none)' };
  return { kind: 'intact' };
}

/** Writes a text object (a rendered report) with its content type. */
export async function putTextObject(s3: S3Client, bucket: string, key: string, body: string, contentType: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
}
