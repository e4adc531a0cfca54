// Test support: reading what the real systems hold — Mailpit messages, S3 objects, OpenBao as root,
// and every payload of a workflow history (decoded with the codec).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { listAllKeys } from '../../infra/store/objects';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { EncryptionCodec, loadKeyring } from '../../infra/temporal/codec';
import type { Config } from '../../infra/config';
import { rootToken, stackDir, PORTS } from '../../stack/stack';

export interface MailSummary {
  ID: string;
  Subject: string;
  To: { Address: string }[];
}

export async function mailpitMessages(): Promise<MailSummary[]> {
  const res = await fetch(`http://127.0.0.1:${PORTS.mailpitHttp}/api/v1/messages?limit=1000`);
  return ((await res.json()) as { messages: MailSummary[] }).messages;
}

export async function mailpitText(id: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${PORTS.mailpitHttp}/api/v1/message/${id}`);
  return ((await res.json()) as { Text: string }).Text;
}

/**
 * Waits for a new e-mail (its ID not in `before`) whose text names one of `needles` (an alert names
 * its workflow id) and whose subject matches `subject` if given: "Subject\nText", or undefined
 * after `timeoutMs` (default 30 s).
 */
export async function waitForMailNaming(needles: string | string[], before: Set<string>, opts: { subject?: RegExp; timeoutMs?: number } = {}): Promise<string | undefined> {
  const names = [needles].flat();
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const read = new Set(before);
  for (;;) {
    for (const m of (await mailpitMessages()).filter((x) => !read.has(x.ID) && (!opts.subject || opts.subject.test(x.Subject)))) {
      read.add(m.ID);
      const text = await mailpitText(m.ID);
      if (names.some((n) => text.includes(n))) return `${m.Subject}\n${text}`;
    }
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Polls a workflow's `progress` query until it reports `step` and answers that progress; fails at
 * once when it reports "failed" (with its error), or after `timeoutMs` (default 80 s).
 */
export async function waitForStep<P extends { step: string; error?: string; waitingFor?: string }>(h: { query<T>(name: string): Promise<T> }, step: string, opts: { intervalMs?: number; timeoutMs?: number } = {}): Promise<P> {
  const deadline = Date.now() + (opts.timeoutMs ?? 80_000);
  for (;;) {
    const p = await h.query<P>('progress');
    if (p.step === step) return p;
    if (p.step === 'failed' && step !== 'failed') assert.fail(`failed before ${step}: ${p.error ?? ''}`);
    if (Date.now() >= deadline) assert.fail(`never reached ${step}: at ${p.step} (${p.waitingFor ?? ''})`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

export async function bao(method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${PORTS.bao}/v1/${p}`, {
    method,
    headers: { 'X-Vault-Token': rootToken(), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return listAllKeys(s3, bucket, prefix);
}

export async function multipartUploads(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => `${u.Key}#${u.UploadId}`);
}

/** Every payload anywhere in a history, decoded to text, plus the raw stored history as JSON. */
/** Every payload object in a fetched history (the objects themselves, so a caller may rewrite them). */
export function historyPayloads(events: unknown): Payload[] {
  const payloads: Payload[] = [];
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object' || node instanceof Uint8Array) return;
    if (Array.isArray(node)) return node.forEach(walk);
    const o = node as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && 'data' in o) payloads.push(o as Payload);
    for (const v of Object.values(o)) walk(v);
  };
  walk(events);
  return payloads;
}

/** A failure as stored in history (a `temporal.api.failure.v1.Failure`, at any nesting). */
export interface StoredFailure {
  message?: string | null;
  stackTrace?: string | null;
  encodedAttributes?: Payload | null;
}

/**
 * Every failure object in a fetched history: activity failures, workflow failures and their
 * causes. With the failure converter encoding common attributes, each message reads
 * "Encoded failure" and the real message and stack trace are in `encodedAttributes`.
 */
export function historyFailures(events: unknown): StoredFailure[] {
  const out: StoredFailure[] = [];
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object' || node instanceof Uint8Array) return;
    if (Array.isArray(node)) return node.forEach(walk);
    const o = node as Record<string, unknown>;
    if ('message' in o && ('stackTrace' in o || 'encodedAttributes' in o || Object.keys(o).some((k) => k.endsWith('FailureInfo')))) out.push(o as StoredFailure);
    for (const v of Object.values(o)) walk(v);
  };
  walk(events);
  return out;
}

export async function historyTexts(client: Client, cfg: Config, workflowId: string): Promise<{ decoded: string[]; raw: string; activityTypes: string[] }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payloads = historyPayloads(history.events);
  const codec = new EncryptionCodec(loadKeyring(cfg.codec.keysFile));
  const decoded = await codec.decode(payloads);
  const activityTypes = (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityType?.name ? [e.activityTaskScheduledEventAttributes.activityType.name] : []));
  return {
    decoded: decoded.map((p) => {
      try {
        return JSON.stringify(defaultPayloadConverter.fromPayload(p));
      } catch {
        return Buffer.from(p.data ?? new Uint8Array()).toString('utf8');
      }
    }),
    raw: JSON.stringify(history, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v)),
    activityTypes,
  };
}

/** Secret values the local stack holds: none may ever appear in workflow history. */
export function stackSecrets(): { name: string; value: string }[] {
  const dir = stackDir();
  const read = (p: string) => fs.readFileSync(path.join(dir, p), 'utf8');
  const init = JSON.parse(read('openbao/init.json')) as { keys_base64: string[]; root_token: string };
  const s3 = JSON.parse(read('seaweedfs/credentials.json')) as { secretAccessKey: string };
  const codec = JSON.parse(read('codec/keys.json')) as { keys: Record<string, string> };
  const out = [
    { name: 'root token', value: init.root_token },
    ...init.keys_base64.map((k, i) => ({ name: `unseal share ${i + 1}`, value: k })),
    { name: 'worker secret-id', value: read('openbao/worker-secret-id').trim() },
    { name: 'S3 secret key', value: s3.secretAccessKey },
    ...Object.values(codec.keys).map((k, i) => ({ name: `codec key ${i}`, value: k })),
    { name: 'validation private key', value: (JSON.parse(read('keys/validation-key.json')) as { privateKey: string }).privateKey },
  ];
  for (const f of fs.readdirSync(path.join(dir, 'keys')).filter((f) => f.startsWith('share-'))) {
    out.push({ name: f, value: (JSON.parse(read(`keys/${f}`)) as { share: string }).share });
  }
  return out;
}

/** Forget sent alerts so a test sees the first alert of its kind (dedup records live in S3). */
export async function clearAlertDedup(s3: S3Client, bucket: string): Promise<void> {
  const { DeleteObjectsCommand } = await import('@aws-sdk/client-s3');
  const keys = await listKeys(s3, bucket, 'alerts/dedup/');
  if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
}

/** Runs the `vaultdr` CLI as a user would (a child process), against the stack's config by default. */
export function vaultdr(args: string[], env: NodeJS.ProcessEnv = { VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json') }): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, [path.join(__dirname, '..', '..', '..', 'bin', 'vaultdr.js'), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** The ApplicationFailure a workflow run ended with; fails the test if it succeeded. */
export async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => assert.fail('workflow should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
  return err.cause;
}

/** Like vaultdr(), without blocking this process (an in-process worker must keep answering). */
export function vaultdrAsync(args: string[], env: NodeJS.ProcessEnv = { VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json') }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', '..', 'bin', 'vaultdr.js'), ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Each activity's time from scheduled to closed (ms), by activity type, from a run's history: the phases of a runbook. */
export async function activityPhases(client: Client, workflowId: string): Promise<Record<string, number>> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const ms = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
  const scheduled = new Map<string, { name: string; at: number }>();
  const out: Record<string, number> = {};
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { name: s.activityType?.name ?? '?', at: ms(e) });
    const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
    if (closed?.scheduledEventId != null) {
      const from = scheduled.get(String(closed.scheduledEventId));
      if (from) out[from.name] = (out[from.name] ?? 0) + ms(e) - from.at;
    }
  }
  return out;
}
