// Small JSON-object helpers over S3 shared by activities and the CLI.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

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
