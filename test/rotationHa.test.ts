// Emergency rotation of a PostgreSQL role password on the HA cluster (issue 15 §2 on issue 13's
// harness: Patroni + PostgreSQL 15 ×3, etcd, HAProxy). The rotator's superuser URL goes through
// HAProxy's read-write port and rotation.postgresNodes lists every member. A Patroni switchover is
// forced between setting the new password and verifying it. Checked here independently of the
// workflow: through HAProxy and on every member (a replica read-only) the new password logs in and
// the old one is refused; a read-only session on a replica opened with the old password is ended;
// the leader really changed; no old or new password (nor the superuser's) is in the history.
// Uses the HA harness: run under `flock /tmp/vaultdr-ha.lock` with VAULTDR_HA_DIR shared.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { connectClient } from '../client/connect';
import type { RotateResult } from '../common/rotation';
import type { Config } from '../infra/config';
import { asSuperuser, parsePgUrl, tryLogin, type PgTarget } from '../infra/postgres/roles';
import { heartbeating } from '../activities/heartbeat';
import { haUp } from '../stack/ha/index';
import { patroniClusterOfHarness, pgSecrets, PG_NODES, PG_PORTS, waitPostgresHealthy } from '../stack/ha/postgres';
import { ensureRotatorToken } from '../stack/stack';
import { activityPhases, bao, historyTexts } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import type { Activities } from '../workers/worker';

const rand = () => crypto.randomBytes(4).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rotateCredential postgres-role on the HA cluster through HAProxy (Patroni harness)', function () {
  this.timeout(300_000);
  let cfg: Config;
  let client: Client;
  let tmp: string;
  let viaHaproxy: PgTarget;
  const timings: Record<string, number> = {};

  before(async () => {
    await haUp(undefined, { vault: false });
    await waitPostgresHealthy(60_000);
    const base = await ensureStack();
    const tokenFile = await ensureRotatorToken();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-rotate-ha-'));
    const url = `postgres://postgres:${encodeURIComponent(pgSecrets().superuser)}@127.0.0.1:${PG_PORTS.haproxyReadWrite}/postgres`;
    fs.writeFileSync(path.join(tmp, 'pg-url'), url, { mode: 0o600 });
    viaHaproxy = parsePgUrl(url);
    cfg = withQueue(
      {
        ...base,
        rotation: { ...base.rotation, tokenFile, postgresSuperuserUrlFile: path.join(tmp, 'pg-url'), postgresNodes: PG_NODES.map((n) => `127.0.0.1:${n.pgPort}`) },
        metrics: { listen: '' },
        restore: { ...base.restore, shareIntakeTokensFile: undefined },
      },
      uniqueQueue('rotate-ha'),
    );
    client = await connectClient(cfg);
  });

  after(async () => {
    console.log(`      HA rotation timings (ms): ${JSON.stringify(timings)}`);
    await client?.connection.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const leader = async () => (await patroniClusterOfHarness())?.members.find((m) => m.role === 'leader')?.name;
  const node = (name: string): PgTarget => ({ ...viaHaproxy, port: PG_NODES.find((n) => n.name === name)!.pgPort });
  /** A planned Patroni switchover, then HAProxy routing to the new leader and the old one back as a streaming replica. */
  const switchover = async (): Promise<{ from: string; to: string }> => {
    const from = (await leader())!;
    const rest = PG_NODES.find((n) => n.name === from)!.restPort;
    const res = await fetch(`http://127.0.0.1:${rest}/switchover`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ leader: from }), signal: AbortSignal.timeout(60_000) });
    assert.equal(res.status, 200, `Patroni refused the switchover: ${await res.text()}`);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const port = await asSuperuser(viaHaproxy, async (c) => (await c.query<{ p: string; r: boolean }>("SELECT current_setting('port') AS p, pg_is_in_recovery() AS r")).rows[0]).catch(() => undefined);
      if (port && !port.r && Number(port.p) !== node(from).port) break;
      assert.ok(Date.now() < deadline, 'HAProxy did not route to a new leader within 60 s');
      await sleep(250);
    }
    await waitPostgresHealthy(60_000);
    return { from, to: (await leader())! };
  };

  it('the new password works through HAProxy and on every member (replicas read-only), the old is refused, across a leader change between rotation and verification', async () => {
    const role = `app_ha_${rand()}`;
    const oldPw = crypto.randomBytes(15).toString('base64url');
    await asSuperuser(viaHaproxy, (c) => c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${oldPw}'`));
    await bao('POST', `secret/data/vault-dr/credentials/postgres-role/${role}`, { data: { username: role, password: oldPw } });
    // A read-only session on a replica, logged in with the old password (what an attacker may hold).
    const replicaName = (await patroniClusterOfHarness())!.members.find((m) => m.role !== 'leader')!.name;
    const held = new PgClient({ host: '127.0.0.1', port: node(replicaName).port, user: role, password: oldPw, database: 'postgres' });
    held.on('error', () => undefined); // the termination arrives as an error event too
    for (let i = 0; i < 40; i++) {
      // The role reaches the replica once it replayed the CREATE ROLE.
      if ((await tryLogin(node(replicaName), role, oldPw).catch(() => 'refused')) === 'ok') break;
      await sleep(250);
    }
    await held.connect();
    assert.equal((await held.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, true, 'precondition: the held session is on a replica');

    let moved: { from: string; to: string } | undefined;
    let switchMs = 0;
    // The leader changes after the new password is set and before it is verified.
    const leaderChange = (a: Activities): Activities => ({
      ...a,
      verifyNewCredential: async (req: Parameters<Activities['verifyNewCredential']>[0]) => {
        if (!moved) {
          const t = Date.now();
          moved = await heartbeating('switchover', switchover);
          switchMs = Date.now() - t;
        }
        return a.verifyNewCredential(req);
      },
    });
    const workflowId = `rotate-ha-${rand()}`;
    const t0 = Date.now();
    const result = await withWorker(cfg, () => client.workflow.execute('rotateCredential', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ credentialClass: 'postgres-role', scope: role }] }) as Promise<RotateResult>, leaderChange);
    timings['rotation incl. switchover'] = Date.now() - t0;
    timings.switchover = switchMs;
    Object.assign(timings, await activityPhases(client, workflowId));
    console.log(`      detail: ${result.detail}`);
    assert.deepEqual({ ...result, detail: '' }, { credentialClass: 'postgres-role', rotated: true, newVerified: true, oldRefused: true, oldLeftInPlace: false, detail: '' }, result.detail);
    assert.ok(moved && moved.from !== moved.to, `the leader did not change: ${JSON.stringify(moved)}`);
    assert.equal((result.detail.match(/127\.0\.0\.1:544[123] accepts/g) ?? []).length, 3, `not every member was checked for the new password: ${result.detail}`);
    assert.equal((result.detail.match(/127\.0\.0\.1:544[123] refuses/g) ?? []).length, 3, `not every member was checked for the old password: ${result.detail}`);

    // Independently: through HAProxy (the new leader) and on each member directly.
    const nu = (await bao('GET', `secret/data/vault-dr/credentials/postgres-role/${role}`)).json.data.data as { password: string };
    assert.notEqual(nu.password, oldPw);
    assert.equal(await tryLogin(viaHaproxy, role, nu.password), 'ok', 'the new password does not log in through HAProxy');
    assert.equal(await tryLogin(viaHaproxy, role, oldPw), 'refused', 'the old password still logs in through HAProxy');
    let replicasChecked = 0;
    for (const n of PG_NODES) {
      const t = node(n.name);
      assert.equal(await tryLogin(t, role, oldPw), 'refused', `the old password still logs in on ${n.name}`);
      const c = new PgClient({ host: t.host, port: t.port, user: role, password: nu.password, database: 'postgres' });
      await c.connect();
      try {
        const r = (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
        if (r) {
          replicasChecked++;
          await assert.rejects(c.query('CREATE TABLE rotation_probe (x int)'), /read-only transaction/);
        }
      } finally {
        await c.end();
      }
    }
    assert.equal(replicasChecked, 2, 'the new password was not tried on two replicas');
    await assert.rejects(held.query('SELECT 1'), 'the replica session opened with the old password is still alive');
    await held.end().catch(() => undefined);

    const h = await historyTexts(client, cfg, workflowId);
    const text = h.decoded.join('\n') + h.raw;
    assert.ok(text.includes(`vault-dr/credentials/postgres-role/${role}`), 'the decoded history does not name the KV path: the leak check would see nothing');
    for (const [name, v] of Object.entries({ 'old password': oldPw, 'new password': nu.password, 'superuser password': pgSecrets().superuser })) assert.ok(!text.includes(v), `${name} appears in the history`);
    await asSuperuser(viaHaproxy, (c) => c.query(`DROP ROLE ${role}`)).catch(() => undefined);
  });
});
