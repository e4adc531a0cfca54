// vaultHealthMonitor and alertDeliveryTest: the pure problem rules, then both workflows against
// the real stack — a sealed OpenBao raises exactly one alert per channel across continue-as-new
// and one all-clear when unsealed (PagerDuty trigger/resolve with the same dedup key), and every
// severity × channel test alert confirmed from the real inboxes, by ack, or reported missing.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client/connect';
import type { DeliveryReport } from '../common/alertTest';
import type { PostgresHaReport, VaultHealth } from '../common/health';
import { evaluate, undecidable, type MonitorFacts } from '../common/monitor';
import type { Config } from '../infra/config';
import { configureLocalAlertChannels, PORTS, stackDir, unsealBao } from '../stack/stack';
import type { Received } from '../stack/saasSink';
import type { MonitorStatus } from '../workflows/monitoring/vaultHealthMonitor';
import { bao, failureOf, mailpitMessages, vaultdrAsync } from './helpers/inspect';
import { ensureStack, uniqueQueue, withQueue } from './helpers/stack';
import { withWorker } from './helpers/worker';
import type { Activities } from '../workers/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sinkReceived = async (): Promise<Received[]> => (await (await fetch(`http://127.0.0.1:${PORTS.saasSink}/api/received`)).json()) as Received[];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

describe('vaultHealthMonitor rules (pure)', () => {
  const healthyVault: VaultHealth = { status: 'healthy', reachable: true, initialized: true, sealed: false, standby: false, version: '2.7.2', clusterName: 'c', clusterId: 'id', leaderAddress: 'http://a:8200', raftPeers: [{ nodeId: 'n1', address: 'a:8201', leader: true, voter: true }], problems: [] };
  const now = 1_800_000_000;
  const facts = (over: { vault?: Partial<VaultHealth>; autopilot?: MonitorFacts['autopilot']; dr?: Partial<MonitorFacts['dr']> } = {}): MonitorFacts => ({
    vault: { ...healthyVault, ...over.vault },
    autopilot: over.autopilot ?? { healthy: true, failureTolerance: 0, unhealthyServers: [] },
    dr: { storeUp: true, verified: 3, unverified: 0, lastVerifiedAt: now - 3600, lastValidationOkAt: now - 86400, lastValidation: { at: now - 86400, ok: true, rto: 20, rpo: 60, backupId: 'b' }, ...over.dr },
  });
  const t = { expectedRaftPeers: 1, backupMaxAgeHours: 26, validationMaxAgeDays: 8 };
  const keys = (f: MonitorFacts, th = t) => evaluate(f, th, now).map((p) => `${p.key}:${p.severity}`);

  it('a healthy installation has no problems', () => assert.deepEqual(keys(facts()), []));
  it('sealed, unreachable and uninitialised OpenBao are critical and exclusive', () => {
    assert.deepEqual(keys(facts({ vault: { sealed: true } })), ['VaultSealed:critical']);
    assert.deepEqual(keys(facts({ vault: { reachable: false, problems: ['ECONNREFUSED'] } })), ['VaultUnreachable:critical']);
    assert.deepEqual(keys(facts({ vault: { initialized: false } })), ['VaultNotInitialized:critical']);
  });
  it('no leader, missing voters and autopilot-unhealthy servers', () => {
    assert.deepEqual(keys(facts({ vault: { raftPeers: [{ nodeId: 'n1', address: 'a', leader: false, voter: true }] } })), ['VaultNoActiveNode:critical']);
    assert.deepEqual(keys(facts({ vault: { standby: true, leaderAddress: '' } })), ['VaultNoActiveNode:critical']);
    assert.deepEqual(keys(facts({ vault: { standby: true } })), [], 'a standby that knows its leader is fine');
    assert.deepEqual(keys(facts(), { ...t, expectedRaftPeers: 3 }), ['VaultRaftPeerDown:warning']);
    const ap = evaluate(facts({ autopilot: { healthy: false, unhealthyServers: ['node-2'] } }), t, now);
    assert.equal(ap[0]?.key, 'VaultRaftPeerDown');
    assert.match(ap[0]!.summary, /node-2/);
  });
  it('HA PostgreSQL: no primary is critical; a missing replica and lag over the threshold are warnings; none configured, nothing', () => {
    const pg: PostgresHaReport = { status: 'healthy', primary: 'pg1', replicas: [{ name: 'pg2', state: 'streaming', sync: true, lagBytes: 0 }, { name: 'pg3', state: 'streaming', sync: false, lagBytes: 1024 }], down: [], expectedReplicas: 2, maxLagBytes: 1048576, problems: [] };
    const withPg = (over: Partial<PostgresHaReport>) => ({ ...facts(), postgres: { ...pg, ...over } });
    assert.deepEqual(keys(withPg({})), []);
    assert.deepEqual(keys(withPg({ primary: undefined, replicas: [], down: ['pg1', 'pg2', 'pg3'], problems: ['no running primary'] })), ['PostgresNoPrimary:critical']);
    const down = evaluate(withPg({ replicas: [pg.replicas[0]!], down: ['pg3'] }), t, now);
    assert.deepEqual(down.map((p) => p.key), ['PostgresReplicaDown']);
    assert.match(down[0]!.summary, /1 of 2 PostgreSQL replicas stream from pg1; not streaming: pg3/);
    assert.deepEqual(keys(withPg({ replicas: [pg.replicas[0]!, { ...pg.replicas[1]!, lagBytes: 1048576 }] })), [], 'at the threshold is not over it');
    const lag = evaluate(withPg({ replicas: [pg.replicas[0]!, { ...pg.replicas[1]!, lagBytes: 1048577 }] }), t, now);
    assert.deepEqual(lag.map((p) => p.key), ['ReplicationLagHigh']);
    assert.match(lag[0]!.summary, /pg3 1048577 B/);
  });
  it('backup freshness: missing, stale at the threshold, not before', () => {
    assert.deepEqual(keys(facts({ dr: { lastVerifiedAt: undefined } })), ['BackupMissing:critical']);
    assert.deepEqual(keys(facts({ dr: { lastVerifiedAt: now - 26 * 3600 + 60 } })), []);
    assert.deepEqual(keys(facts({ dr: { lastVerifiedAt: now - 26 * 3600 - 60 } })), ['BackupStale:critical']);
  });
  it('restore validation: failed, never succeeded, stale after the limit', () => {
    assert.deepEqual(keys(facts({ dr: { lastValidation: { at: now, ok: false, rpo: 1, backupId: 'b', error: 'canary mismatch' } } })), ['RestoreValidationFailed:critical']);
    assert.deepEqual(keys(facts({ dr: { lastValidation: undefined, lastValidationOkAt: undefined } })), ['RestoreValidationNeverSucceeded:warning']);
    assert.deepEqual(keys(facts({ dr: { lastValidationOkAt: now - 8 * 86400 - 60 } })), ['RestoreValidationStale:warning']);
    assert.deepEqual(keys(facts({ dr: { lastValidationOkAt: now - 8 * 86400 + 60 } })), []);
  });
  it('keeps backup alerts open while the bucket cannot be read, and raft alerts while OpenBao is sealed', () => {
    const blindStore = undecidable(facts({ dr: { storeUp: false } }));
    assert.equal(blindStore('BackupStale'), true);
    assert.equal(blindStore('RestoreValidationFailed'), true);
    assert.equal(blindStore('BackupStoreUnreachable'), false);
    assert.equal(blindStore('VaultSealed'), false);
    const sealed = undecidable(facts({ vault: { sealed: true } }));
    assert.equal(sealed('VaultRaftPeerDown'), true);
    assert.equal(sealed('BackupStale'), false);
    assert.equal(undecidable(facts())('BackupStale'), false);
  });
  it('an unreachable bucket is reported once, without guessing backup freshness', () => {
    assert.deepEqual(keys(facts({ dr: { storeUp: false, storeError: 'ECONNREFUSED', lastVerifiedAt: undefined } })), ['BackupStoreUnreachable:warning']);
  });
});

describe('vaultHealthMonitor and alertDeliveryTest workflows (real stack)', function () {
  this.timeout(300_000);
  let cfg: Config;
  let client: Client;

  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('monitor'));
    client = await connectClient(cfg);
    await configureLocalAlertChannels();
  });
  after(async () => client?.connection.close());

  it('rejects bad input naming the field', async () => {
    await withWorker(cfg, async () => {
      const f = await failureOf(client.workflow.execute('vaultHealthMonitor', { taskQueue: cfg.temporal.taskQueue, workflowId: `monitor-bad-${Date.now()}`, args: [{ intervalSeconds: 0 } as never] }));
      assert.equal(f.type, 'InvalidInput');
      assert.match(f.message, /field "intervalSeconds"/);
      const g = await failureOf(client.workflow.execute('alertDeliveryTest', { taskQueue: cfg.temporal.taskQueue, workflowId: `adt-bad-${Date.now()}`, args: [{ severities: ['urgent'] } as never] }));
      assert.equal(g.type, 'InvalidInput');
      assert.match(g.message, /field "severities.0"/);
    });
  });

  it('a sealed OpenBao raises one alert per channel across continue-as-new, and one all-clear when unsealed', async () => {
    const workflowId = `monitor-seal-${Date.now()}`;
    const startedAt = Date.now();
    const mailBefore = new Set((await mailpitMessages()).map((m) => m.ID));
    await withWorker(cfg, async () => {
      const first = await client.workflow.start('vaultHealthMonitor', {
        taskQueue: cfg.temporal.taskQueue,
        workflowId,
        args: [{ intervalSeconds: 1, clearAfterChecks: 2, checksPerRun: 4 }],
      });
      const h = client.workflow.getHandle(workflowId); // follows the newest run
      const status = () => h.query<MonitorStatus>('status');
      try {
        await waitFor('two clean checks', async () => ((await status()).checks >= 2 ? true : undefined));
        assert.equal((await status()).open.VaultSealed, undefined);
        assert.equal((await bao('PUT', 'sys/seal')).status, 204);
        const opened = await waitFor('VaultSealed raised and delivered', async () => {
          const s = await status();
          return s.open.VaultSealed?.delivered ? s.open.VaultSealed : undefined;
        });
        assert.equal(opened.severity, 'critical');
        const checksAtOpen = (await status()).checks;
        // Stay sealed for several more checks, across at least one continue-as-new (4 checks per run).
        await waitFor('six more checks', async () => ((await status()).checks >= checksAtOpen + 6 ? true : undefined));
        assert.equal((await status()).open.VaultSealed?.incidentKey, opened.incidentKey, 'the open alert is carried over, not raised again');
        assert.notEqual((await h.describe()).runId, first.firstExecutionRunId, 'continue-as-new happened');

        await unsealBao();
        await waitFor('VaultSealed resolved', async () => ((await status()).open.VaultSealed ? undefined : true));
        const pd = (await sinkReceived()).filter((r) => r.service === 'pagerduty' && r.body.dedup_key === opened.incidentKey);
        assert.deepEqual(pd.map((r) => r.body.event_action), ['trigger', 'resolve']);
        const slack = (await sinkReceived()).filter((r) => r.service === 'slack' && r.at >= startedAt && /VaultSealed/.test(String(r.body.text)) && !/\[FIRING/.test(String(r.body.text)));
        assert.equal(slack.filter((r) => /CRITICAL\]\* VaultSealed:/.test(String(r.body.text))).length, 1, 'one Slack alert');
        assert.equal(slack.filter((r) => /RESOLVED\]\* VaultSealed resolved/.test(String(r.body.text))).length, 1, 'one Slack all-clear');
        const mails = (await mailpitMessages()).filter((m) => !mailBefore.has(m.ID));
        assert.equal(mails.filter((m) => m.Subject.startsWith('[vault-dr CRITICAL] VaultSealed:')).length, 1, 'one alert e-mail');
        assert.equal(mails.filter((m) => m.Subject.startsWith('[vault-dr RESOLVED] VaultSealed resolved')).length, 1, 'one all-clear e-mail');
        const log = (await status()).log.filter((l) => l.key === 'VaultSealed').map((l) => l.event);
        assert.ok(log.includes('resolved'), JSON.stringify(log));
      } finally {
        await unsealBao();
        await h.terminate('test done').catch(() => undefined);
      }
    });
  });

  it('a checkNow that arrives while a check runs gets a check of its own, without waiting the interval', async () => {
    const workflowId = `monitor-checknow-${Date.now()}`;
    let hold = false;
    let entered!: () => void;
    let release!: () => void;
    const inCheck = new Promise<void>((r) => (entered = r));
    const gate = new Promise<void>((r) => (release = r));
    const wrap = (a: Activities): Activities => ({
      ...a,
      collectMonitorFacts: async (req) => {
        if (hold) {
          hold = false;
          entered();
          await gate;
        }
        return a.collectMonitorFacts(req);
      },
    });
    await withWorker(
      cfg,
      async () => {
        const h = await client.workflow.start('vaultHealthMonitor', { taskQueue: cfg.temporal.taskQueue, workflowId, args: [{ intervalSeconds: 3600, checksPerRun: 10 }] });
        const checks = async () => (await h.query<MonitorStatus>('status')).checks;
        try {
          await waitFor('the first check', async () => ((await checks()) >= 1 ? true : undefined));
          hold = true;
          await h.signal('checkNow'); // starts check 2, which the wrapper holds
          await inCheck;
          await h.signal('checkNow'); // arrives during check 2
          release();
          await waitFor('check 3, long before the hour-long interval', async () => ((await checks()) >= 3 ? true : undefined));
          assert.equal(await checks(), 3, 'exactly one more check per signal');
        } finally {
          release();
          await h.terminate('test done').catch(() => undefined);
        }
      },
      wrap,
    );
  });

  it('alertDeliveryTest confirms every severity on every channel from the real inboxes', async () => {
    const r = (await withWorker(cfg, () =>
      client.workflow.execute('alertDeliveryTest', { taskQueue: cfg.temporal.taskQueue, workflowId: `adt-inbox-${Date.now()}`, args: [{ confirm: 'inbox', ackTimeoutSeconds: 30 }] }),
    )) as DeliveryReport;
    assert.equal(r.rows.length, 9);
    assert.deepEqual(r.unconfirmed, []);
    assert.equal(r.ok, true);
    for (const row of r.rows) assert.ok(row.sent && row.confirmed, JSON.stringify(row));
    const pd = (await sinkReceived()).filter((x) => x.service === 'pagerduty' && String(x.body.dedup_key).includes(r.token));
    assert.equal(pd.filter((x) => x.body.event_action === 'trigger').length, 3);
    assert.equal(pd.filter((x) => x.body.event_action === 'resolve').length, 3, 'test incidents are resolved at once');
  });

  it('alertDeliveryTest waits for ack signals, and reports channels that are unconfigured or never acknowledged', async () => {
    await bao('DELETE', 'secret/metadata/vault-dr/alerting/pagerduty');
    try {
      const r = (await withWorker(cfg, async () => {
        const h = await client.workflow.start('alertDeliveryTest', {
          taskQueue: cfg.temporal.taskQueue,
          workflowId: `adt-ack-${Date.now()}`,
          args: [{ severities: ['warning'], channels: ['email', 'slack', 'pagerduty'], confirm: 'ack', ackTimeoutSeconds: 8 }],
        });
        await waitFor('test alerts sent', async () => ((await h.query<DeliveryReport>('report')).rows.length === 3 ? true : undefined));
        await h.signal('ack', { channel: 'email', by: 'oncall-test' });
        return h.result();
      })) as DeliveryReport;
      const row = (c: string) => r.rows.find((x) => x.channel === c)!;
      assert.equal(row('email').confirmed, true);
      assert.equal(row('email').confirmDetail, 'acknowledged by oncall-test');
      assert.equal(row('slack').sent, true);
      assert.equal(row('slack').confirmed, false);
      assert.equal(row('pagerduty').sent, false);
      assert.match(row('pagerduty').sendDetail, /PagerDuty not configured/);
      assert.equal(r.ok, false);
      assert.deepEqual(r.unconfirmed, ['warning/slack: no ack within 8 s', 'warning/pagerduty: PagerDuty not configured']);
    } finally {
      await configureLocalAlertChannels();
    }
  });
});

describe('vaultdr monitor / alerts commands (real stack)', function () {
  this.timeout(180_000);
  let cfg: Config;
  before(async () => {
    cfg = withQueue(await ensureStack(), uniqueQueue('monitor-cli'));
    await configureLocalAlertChannels();
  });
  const env = () => ({ VAULTDR_CONFIG: path.join(stackDir(), 'vaultdr.json'), VAULTDR_TASK_QUEUE: cfg.temporal.taskQueue });

  it('monitor start is idempotent, status shows the checks, and alerts test --confirm inbox confirms each channel', async () => {
    await withWorker(cfg, async () => {
      const client = await connectClient(cfg);
      try {
        const first = await vaultdrAsync(['monitor', 'start', '--interval', '1', '--json'], env());
        assert.equal(first.code, 0, first.stderr);
        assert.equal(JSON.parse(first.stdout).startedNow, true);
        const again = await vaultdrAsync(['monitor', 'start', '--json'], env());
        assert.equal(JSON.parse(again.stdout).startedNow, false);
        assert.equal(JSON.parse(again.stdout).workflowId, `${cfg.temporal.taskQueue}-health-monitor`);
        assert.equal(JSON.parse(again.stdout).settingsAccepted, undefined, 'no options: nothing to change');
        const mon = client.workflow.getHandle(`${cfg.temporal.taskQueue}-health-monitor`);
        await waitFor('a check', async () => ((await mon.query<MonitorStatus>('status')).checks > 0 ? true : undefined));
        // Options on a running monitor change it in place (same run, open alerts kept), not silently ignored.
        const runBefore = (await mon.describe()).runId;
        const openBefore = Object.keys((await mon.query<MonitorStatus>('status')).open).sort();
        const tuned = await vaultdrAsync(['monitor', 'start', '--interval', '2', '--backup-max-age-hours', '30'], env());
        assert.equal(tuned.code, 0, tuned.stderr);
        assert.match(tuned.stdout, /already running .*\nsettings accepted: intervalSeconds 1 → 2, backupMaxAgeHours 26 → 30/);
        const applied = await waitFor('the new settings in force', async () => {
          const s = await mon.query<MonitorStatus>('status');
          return s.settings.intervalSeconds === 2 ? s : undefined;
        });
        assert.equal(applied.settings.backupMaxAgeHours, 30);
        assert.equal(applied.settings.expectedRaftPeers, 1, 'settings not given are kept');
        assert.match(applied.log.find((l) => l.event === 'settings changed')?.detail ?? '', /intervalSeconds 1 → 2, backupMaxAgeHours 26 → 30/);
        assert.equal((await mon.describe()).runId, runBefore);
        assert.deepEqual(Object.keys(applied.open).sort(), openBefore, 'open alerts kept');
        // A value the schema refuses: the CLI says so and exits non-zero; the update's validator refuses it too.
        const refused = await vaultdrAsync(['monitor', 'start', '--expected-peers', '99'], env());
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /settings rejected: configure: .*field "expectedRaftPeers"/);
        await assert.rejects(mon.executeUpdate('configure', { args: [{ intervalSeconds: 0 }] }), (e: Error) => /field "intervalSeconds"/.test((e.cause as Error | undefined)?.message ?? ''));
        // The former signal (older CLIs): logged and ignored.
        await mon.signal('configure', { intervalSeconds: 0 });
        const rejected = await waitFor('the refusal logged', async () => (await mon.query<MonitorStatus>('status')).log.find((l) => l.event === 'settings rejected'));
        assert.match(rejected.detail, /field "intervalSeconds"/);
        assert.equal((await mon.query<MonitorStatus>('status')).settings.intervalSeconds, 2);
        const st = await vaultdrAsync(['monitor', 'status', '--json'], env());
        assert.ok(st.code === 0 || st.code === 3, st.stderr);
        assert.ok(JSON.parse(st.stdout).checks >= 1);

        const t = await vaultdrAsync(['alerts', 'test', '--confirm', 'inbox', '--severity', 'warning', '--channel', 'email', 'slack', '--timeout', '30'], env());
        assert.equal(t.code, 0, t.stdout + t.stderr);
        assert.match(t.stdout, /ALL CONFIRMED/);
        assert.match(t.stdout, /warning\s+slack\s+confirmed\s+found at the slack receiver/);
      } finally {
        await client.workflow.getHandle(`${cfg.temporal.taskQueue}-health-monitor`).terminate('test done').catch(() => undefined);
        await client.connection.close();
      }
    });
  });

  it('reports a monitor that is not running, and rejects a bad flag with exit 2', async () => {
    const st = await vaultdrAsync(['monitor', 'status'], env());
    assert.equal(st.code, 1);
    assert.match(st.stderr, /no monitor is running; start it with "vaultdr monitor start"/);
    const bad = await vaultdrAsync(['alerts', 'test', '--severity', 'urgent'], env());
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Allowed choices are critical, warning, info/);
  });
});
