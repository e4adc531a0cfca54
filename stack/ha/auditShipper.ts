// One audit-log shipper process per HA OpenBao node (infra/ha/auditShip.ts does the work): it runs
// beside the node, as a log shipper on each host would, and copies the node's audit file to the
// local stack's S3 bucket `vault-dr-audit` (versioning + object lock) every SHIP_INTERVAL_MS.
// Run as `node lib/stack/ha/auditShipper.js <node>`; started and stopped by `ha:up` / `ha:down`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { applyBucket } from '../../infra/store/bucketPolicy';
import { AUDIT_BUCKET, readShipState, shipOnce } from '../../infra/ha/auditShip';
import { PORTS, stackDir } from '../stack';
import { haDir, runningPid, startProc, stopProc, type Proc } from './proc';
import { nodeAuditLog, nodeDir, vaultDir, VAULT_NODES } from './vault';

/** The bound on shipping delay: a line is in S3 at most about this long after OpenBao wrote it. */
export const SHIP_INTERVAL_MS = 1000;
/**
 * The prefix a cluster's shipped logs live under: `ha-local-<cluster id>`, so a harness created
 * again from scratch (new logs from byte 0) never mixes its chunks with an earlier cluster's.
 * Written at bootstrap from sys/health's cluster_id (not a secret).
 */
export function haClusterName(): string {
  return fs.readFileSync(path.join(vaultDir(), 'cluster-name'), 'utf8').trim();
}

export function auditS3(): S3Client {
  const creds = JSON.parse(fs.readFileSync(path.join(stackDir(), 'seaweedfs', 'credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  return new S3Client({ endpoint: `http://127.0.0.1:${PORTS.s3}`, region: 'us-east-1', forcePathStyle: true, credentials: creds, maxAttempts: 2 });
}

export const shipStateFile = (node: string) => path.join(nodeDir(node), 'audit', 'shipped.json');

function shipperProc(node: string): Proc {
  return {
    name: `audit-shipper-${node}`,
    binary: path.join('stack', 'ha', 'auditShipper.js'),
    dir: path.join(haDir(), 'audit-shipper'),
    startTimeoutMs: 10_000,
    command: () => ({ cmd: process.execPath, args: [path.join(__dirname, 'auditShipper.js'), node] }),
    up: async () => runningPid(shipperProc(node)) !== undefined,
  };
}

export async function ensureAuditBucket(): Promise<string[]> {
  const r = await applyBucket(auditS3(), { bucket: AUDIT_BUCKET, required: ['encryption', 'versioning', 'objectLock'], objectLock: { mode: 'GOVERNANCE', days: 2 } });
  return r.changed.length ? [`bucket apply ${AUDIT_BUCKET}: ${r.changed.join(', ')}`] : [];
}

export async function startAuditShippers(): Promise<string[]> {
  const out = await ensureAuditBucket();
  for (const n of VAULT_NODES) out.push(`audit shipper ${n.name}: ${await startProc(shipperProc(n.name))}`);
  return out;
}

export async function stopAuditShippers(): Promise<string[]> {
  return Promise.all(VAULT_NODES.map(async (n) => `audit shipper ${n.name}: ${await stopProc(shipperProc(n.name))}`));
}

export function shipperStatus(): string[] {
  return VAULT_NODES.map((n) => {
    const s = readShipState(shipStateFile(n.name));
    let size = 0;
    try {
      size = fs.statSync(nodeAuditLog(n.name)).size;
    } catch {
      // no log yet
    }
    const pid = runningPid(shipperProc(n.name));
    return `audit shipper ${n.name}: ${pid ? `pid ${pid}` : 'stopped'}, shipped ${s.offset}/${size} bytes in ${s.chunks} chunk(s)${s.lastShippedAt ? `, last ${s.lastShippedAt}` : ''}`;
  });
}

/** Ships `node` until SIGTERM; a failed upload is retried on the next tick (the offset only moves after success). */
async function runShipper(node: string): Promise<void> {
  const s3 = auditS3();
  const cluster = haClusterName();
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  while (!stopping) {
    try {
      // Drain: several chunks in a row when the log grew by more than one chunk.
      while ((await shipOnce({ s3, bucket: AUDIT_BUCKET, cluster, node, logFile: nodeAuditLog(node), stateFile: shipStateFile(node) })) > 0 && !stopping);
    } catch (err) {
      console.error(`${new Date().toISOString()} ship ${node}: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, SHIP_INTERVAL_MS));
  }
}

if (require.main === module) {
  const node = process.argv[2];
  if (!node || !VAULT_NODES.some((n) => n.name === node)) {
    console.error(`usage: auditShipper.js <${VAULT_NODES.map((n) => n.name).join('|')}>`);
    process.exit(2);
  }
  void runShipper(node).then(() => process.exit(0));
}
