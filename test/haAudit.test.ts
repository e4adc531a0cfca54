// Audit logs of the HA OpenBao cluster (three nodes behind HAProxy, npm run ha:up), checked by
// infra/ha/auditCheck.ts against the nodes' real files and the shipped copies in S3:
// every node declares the same device; every request through HAProxy is in the log of the node
// that served it and reads straight to a standby are logged by that standby (the union of the
// logs covers everything); the marker is found by its sys/audit-hash HMAC; the shipped copy has no
// gap and matches the local logs, before and after the leader is SIGKILLed, restarted and rejoined.
import assert from 'node:assert/strict';
import { checkAudit, type AuditCheckReport } from '../infra/ha/auditCheck';
import { AUDIT_BUCKET } from '../infra/ha/auditShip';
import { VaultHaDriver } from '../infra/ha/vaultDriver';
import { auditS3, haClusterName } from '../stack/ha/auditShipper';
import { HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haUp } from '../stack/ha/index';
import { AUDIT_DEVICE_PATH, drillTokenFile, harnessVaultEnv, nodeAddr, nodeAuditLog, nodeConfigFile, VAULT_NODES } from '../stack/ha/vault';
import * as fs from 'node:fs';
import { ensureStack } from './helpers/stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function check(): Promise<AuditCheckReport> {
  return checkAudit({
    haproxyAddr: HAPROXY_VAULT_ADDR,
    nodes: VAULT_NODES.map((n) => ({ name: n.name, addr: nodeAddr(n), configFile: nodeConfigFile(n.name), auditLog: nodeAuditLog(n.name) })),
    token: fs.readFileSync(drillTokenFile(), 'utf8').trim(),
    devicePath: AUDIT_DEVICE_PATH,
    s3: auditS3(),
    bucket: AUDIT_BUCKET,
    cluster: haClusterName(),
    // The shippers copy every second; 15 s is the bound the runbook promises.
    shipBoundMs: 15_000,
  });
}

function assertComplete(r: AuditCheckReport, leader: string): void {
  assert.deepEqual(r.problems, [], JSON.stringify(r, null, 2));
  assert.deepEqual(r.unreachable, []);
  assert.ok(r.stanzaIdentical && r.deviceListed);
  const viaHaproxy = r.requests.filter((q) => q.what.includes('through HAProxy'));
  assert.equal(viaHaproxy.length, 2);
  for (const q of viaHaproxy) {
    assert.equal(q.servedBy, leader, 'HAProxy routes to the active node only');
    assert.ok(q.loggedBy.includes(leader), JSON.stringify(q));
  }
  // Each standby served (and logged) the read sent to it; the union of the logs holds every request.
  for (const n of VAULT_NODES.filter((x) => x.name !== leader)) {
    const q = r.requests.find((x) => x.what === `KV read straight to ${n.name}`);
    assert.ok(q, `a read straight to ${n.name}`);
    assert.ok(q.loggedBy.includes(n.name), `${n.name} logged the read it served: ${JSON.stringify(q)}`);
  }
  assert.match(r.marker.hash, /^hmac-sha256:/);
  assert.ok(r.marker.loggedBy.includes(leader), 'the active node logged the marker write');
  assert.ok(r.marker.shipDelayMs !== undefined, 'the marker reached the shipped copy within the bound');
  for (const s of r.shipping) assert.equal(s.gaps, 0, JSON.stringify(s));
}

describe('HA audit logs: every request audited by its node, shipped off-node without gaps', function () {
  this.timeout(300_000);
  let driver: VaultHaDriver;

  before(async () => {
    await ensureStack();
    await haUp();
    driver = new VaultHaDriver(harnessVaultEnv(HAPROXY_VAULT_ADDR));
  });

  it('holds before and after the leader is SIGKILLed, restarted and rejoined', async () => {
    const before = (await driver.health()).leader!;
    assertComplete(await check(), before);

    const f = await driver.inject('kill-leader');
    assert.equal(f.node, before);
    // The new active node, once HAProxy routes to it, logs what it serves.
    let after: string | undefined;
    for (let i = 0; i < 120 && !after; i++) {
      const res = await fetch(`${HAPROXY_VAULT_ADDR}/v1/sys/health`).catch(() => undefined);
      if (res?.status === 200 && res.headers.get('x-served-by') !== before) after = res.headers.get('x-served-by')!;
      else await sleep(250);
    }
    assert.ok(after, 'HAProxy routes to a new active node');
    const during = await check().catch((err: Error) => err);
    await driver.heal(f, 120_000);
    assert.ok(!(during instanceof Error), String(during));
    // The killed node is down during this check: its read fails, everything else must hold.
    assert.deepEqual(during.problems, [], JSON.stringify(during, null, 2));
    assert.deepEqual(during.unreachable, [before]);
    assert.ok(during.requests.filter((q) => q.what.includes('through HAProxy')).every((q) => q.servedBy === after && q.loggedBy.includes(after!)));
    // After the rejoin: all three nodes again, and the killed node's log continues with no gap.
    assertComplete(await check(), (await driver.health()).leader!);
  });
});
