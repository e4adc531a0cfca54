// The audit proof for an HA OpenBao cluster (docs/runbooks/ha-failover.md#audit-logs):
// - every node declares the same audit device in its config, and the cluster lists it;
// - every request sent (through HAProxy, and reads straight to each standby, which 2.5+ serves
//   itself) is in the audit log of the node that served it; the check takes the union of all
//   nodes' logs, as OpenBao's docs prescribe;
// - a marker value written in a KV secret is found by its HMAC (sys/audit-hash) in the logs;
// - every node's log is shipped off-node (object store, append-only chunks) without a gap, and the
//   marker's entries reach the shipped copy within the bound.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { gaps, listShipped, readShipped } from './auditShip';

export interface AuditNode {
  name: string;
  addr: string;
  configFile: string;
  auditLog: string;
}

export interface AuditCheckOptions {
  haproxyAddr: string;
  nodes: AuditNode[];
  token: string;
  devicePath: string;
  s3: S3Client;
  bucket: string;
  cluster: string;
  /** How long the shipped copy may lag the local log. */
  shipBoundMs: number;
}

export interface AuditedRequest {
  what: string;
  requestId: string;
  servedBy: string;
  /** Nodes whose local log holds the request's entries. */
  loggedBy: string[];
}

export interface AuditCheckReport {
  /** Nodes that did not answer the direct read (down during a failover). */
  unreachable: string[];
  stanzaIdentical: boolean;
  stanzaPerNode: Record<string, boolean>;
  deviceListed: boolean;
  requests: AuditedRequest[];
  /** Requests in no node's log, or not in the log of the node that served them. */
  problems: string[];
  marker: { hash: string; loggedBy: string[]; shippedBy: string[]; shipDelayMs?: number };
  shipping: { node: string; localBytes: number; shippedBytes: number; gaps: number; prefixMatches: boolean }[];
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; json: any; servedBy: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {}, servedBy: res.headers.get('x-served-by') ?? '' };
}

/** The `audit "<type>" "<path>" { ... }` stanza of a config file, braces balanced. */
export function auditStanza(config: string): string | undefined {
  const start = config.search(/^audit\s+"/m);
  if (start < 0) return undefined;
  let depth = 0;
  for (let i = config.indexOf('{', start); i < config.length; i++) {
    if (config[i] === '{') depth++;
    if (config[i] === '}' && --depth === 0) return config.slice(start, i + 1);
  }
  return undefined;
}

function requestIdsIn(log: string): Set<string> {
  const ids = new Set<string>();
  for (const line of log.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as { request?: { id?: string } };
      if (e.request?.id) ids.add(e.request.id);
    } catch {
      // a line cut by a SIGKILL: not an entry
    }
  }
  return ids;
}

export async function checkAudit(o: AuditCheckOptions): Promise<AuditCheckReport> {
  const headers = { 'X-Vault-Token': o.token, 'Content-Type': 'application/json' };
  const stanzas = o.nodes.map((n) => auditStanza(fs.readFileSync(n.configFile, 'utf8')));
  const stanzaPerNode = Object.fromEntries(o.nodes.map((n, i) => [n.name, stanzas[i] !== undefined]));
  const stanzaIdentical = stanzas.every((s) => s !== undefined && s === stanzas[0]);
  const listed = await call(`${o.haproxyAddr}/v1/sys/audit`, { headers });
  const deviceListed = listed.status === 200 && (listed.json.data ?? listed.json)[`${o.devicePath}/`]?.type === 'file';

  // Where each node's log stood before the check's requests: only the shipped chunks from there
  // on are read back (a busy cluster's logs are many MB; contiguity comes from the chunk listing).
  const sizeOf = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
  const startAt = Object.fromEntries(o.nodes.map((n) => [n.name, sizeOf(n.auditLog)]));
  const id = crypto.randomUUID();
  const marker = `vaultdr-audit-marker-${id}`;
  const requests: Omit<AuditedRequest, 'loggedBy'>[] = [];
  const w = await call(`${o.haproxyAddr}/v1/secret/data/drill/audit/${id}`, { method: 'POST', headers, body: JSON.stringify({ data: { marker } }) });
  if (w.status !== 200) throw new Error(`audit check: marker write through HAProxy: HTTP ${w.status}`);
  requests.push({ what: 'KV write through HAProxy', requestId: w.json.request_id, servedBy: w.servedBy });
  const r = await call(`${o.haproxyAddr}/v1/secret/data/drill/audit/${id}`, { headers });
  requests.push({ what: 'KV read through HAProxy', requestId: r.json.request_id, servedBy: r.servedBy });
  // Straight to every node: a standby answers the read itself (2.5+) and must log it itself.
  const unreachable: string[] = [];
  for (const n of o.nodes) {
    for (let i = 0; i < 20; i++) {
      const d = await call(`${n.addr}/v1/secret/data/drill/audit/${id}`, { headers }).catch(() => undefined);
      if (!d) {
        unreachable.push(n.name); // a node that is down (mid-drill) serves nothing, so logs nothing
        break;
      }
      if (d.status === 200) {
        requests.push({ what: `KV read straight to ${n.name}`, requestId: d.json.request_id, servedBy: n.name });
        break;
      }
      await new Promise((res) => setTimeout(res, 250)); // a standby not yet caught up answers 404
    }
  }
  const hash = (await call(`${o.haproxyAddr}/v1/sys/audit-hash/${o.devicePath}`, { method: 'POST', headers, body: JSON.stringify({ input: marker }) })).json.data?.hash as string;

  const logs = Object.fromEntries(o.nodes.map((n) => [n.name, fs.existsSync(n.auditLog) ? fs.readFileSync(n.auditLog, 'utf8') : '']));
  const idsByNode = Object.fromEntries(o.nodes.map((n) => [n.name, requestIdsIn(logs[n.name]!)]));
  const problems: string[] = [];
  const audited = requests.map((q) => {
    const loggedBy = o.nodes.filter((n) => idsByNode[n.name]!.has(q.requestId)).map((n) => n.name);
    if (loggedBy.length === 0) problems.push(`${q.what} (request ${q.requestId}) is in no node's audit log`);
    else if (!loggedBy.includes(q.servedBy)) problems.push(`${q.what} (request ${q.requestId}) was served by ${q.servedBy} but logged only by ${loggedBy.join(', ')}`);
    return { ...q, loggedBy };
  });
  const loggedMarker = o.nodes.filter((n) => hash && logs[n.name]!.includes(hash)).map((n) => n.name);
  if (!hash) problems.push('sys/audit-hash returned no hash');
  else if (loggedMarker.length === 0) problems.push(`the marker's HMAC ${hash} is in no node's log`);

  // Shipping: the marker's hash must reach the shipped copy within the bound, with no gap.
  const t0 = Date.now();
  let shippedBy: string[] = [];
  let shipping: AuditCheckReport['shipping'] = [];
  for (;;) {
    shipping = [];
    shippedBy = [];
    for (const n of o.nodes) {
      const chunks = await listShipped(o.s3, o.bucket, o.cluster, n.name);
      const tail = chunks.filter((c) => c.end > startAt[n.name]!);
      const from = tail[0]?.start ?? 0;
      const shipped = await readShipped(o.s3, o.bucket, tail, from);
      const local = fs.existsSync(n.auditLog) ? fs.readFileSync(n.auditLog) : Buffer.alloc(0);
      const shippedEnd = chunks.reduce((a, c) => Math.max(a, c.end), 0);
      shipping.push({ node: n.name, localBytes: local.length, shippedBytes: shippedEnd, gaps: gaps(chunks).length, prefixMatches: local.subarray(from, from + shipped.length).equals(shipped) });
      if (hash && shipped.includes(hash)) shippedBy.push(n.name);
    }
    if (loggedMarker.every((n) => shippedBy.includes(n)) || Date.now() - t0 > o.shipBoundMs) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  const shipDelayMs = loggedMarker.every((n) => shippedBy.includes(n)) ? Date.now() - t0 : undefined;
  if (shipDelayMs === undefined) problems.push(`the marker's entries did not reach the shipped copy within ${o.shipBoundMs} ms (logged by ${loggedMarker.join(', ')}, shipped by ${shippedBy.join(', ') || 'none'})`);
  for (const s of shipping) {
    if (s.gaps) problems.push(`${s.node}: the shipped audit log has ${s.gaps} gap(s)`);
    if (!s.prefixMatches) problems.push(`${s.node}: the shipped audit log differs from the node's local log`);
  }
  if (!stanzaIdentical) problems.push(`audit stanza differs between nodes or is missing: ${JSON.stringify(stanzaPerNode)}`);
  if (!deviceListed) problems.push(`sys/audit does not list the file device at ${o.devicePath}/`);
  return { unreachable, stanzaIdentical, stanzaPerNode, deviceListed, requests: audited, problems, marker: { hash, loggedBy: loggedMarker, shippedBy, shipDelayMs }, shipping };
}
