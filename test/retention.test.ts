// Retention (planRetention in common/backup.ts): 30 daily + 12 monthly grandfather-father-son over
// verified backups. What an operator relies on: the right backups survive a year of daily runs,
// an unverified backup is never pruned automatically, the newest verified backup always survives,
// and a plan never names a backup that is not in the bucket. Also the backup id scheme, whose
// ids must sort by time.
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { prng } from '../common/prng';
import { loadConfig } from '../infra/config';
import { backupIdFor, manifestProblem, planRetention, shortHash, type RetentionCandidate, type RetentionPlan } from '../common/backup';

const DAY_MS = 24 * 60 * 60 * 1000;
const POLICY = { daily: 30, monthly: 12 };

function verifiedAt(iso: string, runId = iso): RetentionCandidate {
  return { backupId: backupIdFor(iso, 'backup-vault-daily', runId), status: 'verified', createdAt: iso };
}

/** One verified backup per UTC day, at 02:00, for `days` days starting at `firstDay`. */
function dailyBackups(firstDay: string, days: number): RetentionCandidate[] {
  const start = Date.parse(`${firstDay}T02:00:00.000Z`);
  return Array.from({ length: days }, (_, i) => verifiedAt(new Date(start + i * DAY_MS).toISOString()));
}

const keptIds = (plan: RetentionPlan) => new Set(plan.keep.map((k) => k.backupId));
const reasonsOf = (plan: RetentionPlan, id: string) => plan.keep.find((k) => k.backupId === id)?.reasons ?? [];

/** Every input id is either kept or deleted, never both, and nothing else is named. */
function assertPartition(input: RetentionCandidate[], plan: RetentionPlan): void {
  const ids = new Set(input.map((b) => b.backupId));
  const kept = keptIds(plan);
  for (const id of plan.delete) {
    assert.ok(ids.has(id), `delete names ${id}, which is not in the input`);
    assert.ok(!kept.has(id), `${id} is both kept and deleted`);
  }
  for (const id of kept) assert.ok(ids.has(id), `keep names ${id}, which is not in the input`);
  assert.equal(new Set(plan.delete).size, plan.delete.length, 'delete lists an id twice');
  assert.equal(kept.size + plan.delete.length, ids.size, 'some backup is neither kept nor deleted');
}


describe('retention (planRetention)', () => {
  it('an empty bucket gives an empty plan', () => {
    assert.deepEqual(planRetention([], POLICY), { keep: [], delete: [] });
  });

  it('a single verified backup is kept', () => {
    const only = verifiedAt('2026-03-04T02:00:00.000Z');
    const plan = planRetention([only], POLICY);
    assert.deepEqual(plan.delete, []);
    assert.deepEqual([...keptIds(plan)], [only.backupId]);
    assert.ok(reasonsOf(plan, only.backupId).includes('newest verified'));
  });

  it('400 days of daily backups: keeps the newest 30 days and the newest backup of each of the newest 12 months', () => {
    const backups = dailyBackups('2025-01-01', 400); // 2025-01-01 … 2026-02-04
    assert.equal(backups.at(-1)!.createdAt, '2026-02-04T02:00:00.000Z');

    // Expected, from the calendar rather than from the function: walk newest → oldest.
    const newestFirst = [...backups].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
    const expectedDaily = newestFirst.slice(0, 30).map((b) => b.backupId); // one backup per day
    const monthOf = (iso: string) => {
      const d = new Date(iso);
      return d.getUTCFullYear() * 12 + d.getUTCMonth();
    };
    const expectedMonthly: string[] = [];
    const months = new Set<number>();
    for (const b of newestFirst) {
      const m = monthOf(b.createdAt);
      if (months.has(m)) continue;
      if (months.size === 12) break;
      months.add(m);
      expectedMonthly.push(b.backupId); // the first seen of a month is its newest
    }
    const expectedKeep = new Set([...expectedDaily, ...expectedMonthly]);
    // 30 days (2026-01-06 … 2026-02-04) plus month-ends 2025-03-31 … 2025-12-31 (Jan and Feb 2026 are already daily).
    assert.equal(expectedKeep.size, 40);
    const expectedDelete = backups.map((b) => b.backupId).filter((id) => !expectedKeep.has(id));

    const plan = planRetention(backups, POLICY);
    assert.deepEqual(keptIds(plan), expectedKeep);
    assert.deepEqual(plan.delete, [...expectedDelete].sort());
    assertPartition(backups, plan);

    const byDate = (iso: string) => backups.find((b) => b.createdAt === iso)!.backupId;
    assert.ok(reasonsOf(plan, byDate('2026-01-06T02:00:00.000Z')).some((r) => r.startsWith('daily')));
    assert.ok(reasonsOf(plan, byDate('2025-03-31T02:00:00.000Z')).some((r) => r.startsWith('monthly')));
    assert.ok(plan.delete.includes(byDate('2026-01-05T02:00:00.000Z')), 'the 31st newest day is pruned');
    assert.ok(plan.delete.includes(byDate('2025-02-28T02:00:00.000Z')), 'the 13th newest month is pruned');
    assert.ok(plan.delete.includes(byDate('2025-12-30T02:00:00.000Z')), 'a mid-month backup outside the daily window is pruned');
  });

  it('several backups on one day: only the newest of that day is its daily; the others are pruned', () => {
    const day3 = ['2026-05-03T02:00:00.000Z', '2026-05-03T09:15:00.000Z', '2026-05-03T23:59:59.000Z'].map((iso) => verifiedAt(iso));
    const earlier = ['2026-05-01T02:00:00.000Z', '2026-05-02T02:00:00.000Z', '2026-04-30T02:00:00.000Z'].map((iso) => verifiedAt(iso));
    // Input order must not matter.
    const backups = [day3[1]!, ...earlier, day3[2]!, day3[0]!];
    const plan = planRetention(backups, { daily: 3, monthly: 0 });
    // The three newest *days* (05-03, 05-02, 05-01), not the three newest backups.
    assert.deepEqual(keptIds(plan), new Set([day3[2]!.backupId, earlier[1]!.backupId, earlier[0]!.backupId]));
    assert.deepEqual(plan.delete, [day3[0]!.backupId, day3[1]!.backupId, earlier[2]!.backupId].sort());
    assertPartition(backups, plan);
  });

  it('unverified backups are never deleted, whatever their age, and are listed with a reason', () => {
    const verified = dailyBackups('2026-01-01', 60);
    const unverified: RetentionCandidate[] = [
      { backupId: backupIdFor('2019-06-01T02:00:00.000Z', 'backup-vault-daily', 'r-old'), status: 'uploaded', createdAt: '2019-06-01T02:00:00.000Z' },
      { backupId: backupIdFor('2026-01-15T02:30:00.000Z', 'backup-vault-daily', 'r-mid'), status: 'uploaded', createdAt: '2026-01-15T02:30:00.000Z' },
      // A backup object whose manifest is missing is listed with no time at all.
      { backupId: '20240101T000000Z-deadbeef', status: 'uploaded', createdAt: '' },
      // Newer than every verified backup: must not displace the newest *verified* one.
      { backupId: backupIdFor('2026-12-31T02:00:00.000Z', 'backup-vault-daily', 'r-new'), status: 'uploaded', createdAt: '2026-12-31T02:00:00.000Z' },
    ];
    const backups = [...unverified, ...verified];
    for (const policy of [POLICY, { daily: 1, monthly: 0 }]) {
      const plan = planRetention(backups, policy);
      for (const u of unverified) {
        assert.ok(!plan.delete.includes(u.backupId), `unverified ${u.backupId} is deleted under ${JSON.stringify(policy)}`);
        assert.ok(
          reasonsOf(plan, u.backupId).some((r) => /unverified/.test(r)),
          `unverified ${u.backupId} is not listed as kept with a reason`,
        );
      }
      assert.ok(keptIds(plan).has(verified.at(-1)!.backupId), 'the newest verified backup is kept');
      assertPartition(backups, plan);
    }
  });

  it('the newest verified backup is always kept, even with {daily: 1, monthly: 0} or a zero policy', () => {
    const backups = dailyBackups('2026-01-01', 10);
    const newest = backups.at(-1)!;
    for (const policy of [
      { daily: 1, monthly: 0 },
      { daily: 0, monthly: 0 },
    ]) {
      const plan = planRetention(backups, policy);
      assert.deepEqual([...keptIds(plan)], [newest.backupId], JSON.stringify(policy));
      assert.ok(reasonsOf(plan, newest.backupId).includes('newest verified'));
      assert.equal(plan.delete.length, 9);
      assertPartition(backups, plan);
    }
  });

  it('never deletes an id that is not in its input, nor an unverified one (randomised buckets)', () => {
    const rand = prng(20260101);
    for (let round = 0; round < 50; round++) {
      const n = Math.floor(rand() * 80);
      const backups: RetentionCandidate[] = [];
      for (let i = 0; i < n; i++) {
        const t = Date.parse('2024-01-01T00:00:00.000Z') + Math.floor(rand() * 900 * DAY_MS);
        const iso = new Date(t).toISOString();
        backups.push({ backupId: backupIdFor(iso, 'wf', `run-${round}-${i}`), status: rand() < 0.2 ? 'uploaded' : 'verified', createdAt: iso });
      }
      const policy = { daily: 1 + Math.floor(rand() * 40), monthly: Math.floor(rand() * 15) };
      const plan = planRetention(backups, policy);
      assertPartition(backups, plan);
      const status = new Map(backups.map((b) => [b.backupId, b.status]));
      for (const id of plan.delete) assert.equal(status.get(id), 'verified', `round ${round}: deletes unverified ${id}`);
      const verified = backups.filter((b) => b.status === 'verified').sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
      if (verified[0]) assert.ok(keptIds(plan).has(verified[0].backupId), `round ${round}: newest verified not kept`);
      assert.deepEqual(plan.delete, [...plan.delete].sort(), 'delete is sorted');
    }
  });
});

describe('backup ids (backupIdFor)', () => {
  it('are deterministic: the same run always gets the same id, a different run a different one', () => {
    const a = backupIdFor('2026-11-28T02:00:00.123Z', 'backup-vault-daily', 'run-1');
    assert.equal(a, backupIdFor('2026-11-28T02:00:00.123Z', 'backup-vault-daily', 'run-1'));
    assert.match(a, /^20261128T020000Z-[0-9a-f]{8}$/);
    assert.equal(a, `20261128T020000Z-${shortHash('backup-vault-daily/run-1')}`);
    assert.notEqual(a, backupIdFor('2026-11-28T02:00:00.123Z', 'backup-vault-daily', 'run-2'));
    // Fractional seconds are dropped, present or not.
    assert.equal(backupIdFor('2026-11-28T02:00:00Z', 'w', 'r'), backupIdFor('2026-11-28T02:00:00.999Z', 'w', 'r'));
  });

  it('shortHash is 32-bit FNV-1a (known test vectors)', () => {
    assert.equal(shortHash(''), '811c9dc5');
    assert.equal(shortHash('a'), 'e40c292c');
    assert.equal(shortHash('foobar'), 'bf9cf968');
  });

  it('sort by time', () => {
    const times = ['2025-12-31T23:59:59.999Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', '2026-01-09T12:00:00.000Z', '2026-01-10T02:00:00.000Z', '2026-10-01T02:00:00.000Z', '2027-02-01T02:00:00.000Z'];
    const ids = times.map((t, i) => backupIdFor(t, 'backup-vault-daily', `run-${times.length - i}`));
    const shuffled = [ids[3]!, ids[6]!, ids[0]!, ids[5]!, ids[1]!, ids[4]!, ids[2]!];
    assert.deepEqual([...shuffled].sort(), ids);
  });
});

describe('manifest identity (manifestProblem)', () => {
  const id = '20261128T020000Z-1a2b3c4d';
  it('accepts the manifest of its own backup', () => assert.equal(manifestProblem(id, { backupId: id, object: { key: `backups/${id}/snapshot.vdrb` } }), undefined));
  it('refuses a manifest swapped from another backup, naming both ids', () => {
    const other = '20261127T020000Z-99999999';
    assert.match(manifestProblem(id, { backupId: other, object: { key: `backups/${other}/snapshot.vdrb` } })!, new RegExp(`describes backup ${other}, not ${id} \\(swapped or misplaced manifest\\)`));
  });
  it('refuses a manifest whose object is outside its backup', () => {
    assert.match(manifestProblem(id, { backupId: id, object: { key: 'backups/x/snapshot.vdrb' } })!, /points at backups\/x\/snapshot.vdrb/);
  });
});

describe('retention floor and bucket settings in the configuration (infra/config.ts)', () => {
  const base = { VAULTDR_VAULT_TOKEN_FILE: '/t', VAULTDR_CODEC_KEYS_FILE: '/k' };
  const load = (env: Record<string, string>) => loadConfig({ env: { ...base, ...env }, cwd: os.tmpdir() });

  it('defaults to a floor of 7 daily and 3 monthly, and 30 days of GOVERNANCE object-lock default retention', () => {
    const cfg = load({});
    assert.deepEqual(cfg.backup.retention, { daily: 30, monthly: 12, minDaily: 7, minMonthly: 3 });
    assert.equal(cfg.backup.objectLockDays, 30);
    assert.equal(cfg.backup.objectLockMode, 'GOVERNANCE');
  });

  it('refuses a configured retention below the configured floor, and lowers the floor only by configuration', () => {
    assert.throws(() => load({ VAULTDR_BACKUP_RETENTION_DAILY: '3' }), /backup\.retention: daily\/monthly must not be below minDaily\/minMonthly/);
    const lowered = load({ VAULTDR_BACKUP_RETENTION_DAILY: '3', VAULTDR_BACKUP_RETENTION_MIN_DAILY: '2' });
    assert.equal(lowered.backup.retention.daily, 3);
    assert.equal(lowered.backup.retention.minDaily, 2);
  });

  it('reaches the bucket requirements, restore settings and admin credentials by environment variable', () => {
    const cfg = load({
      VAULTDR_BACKUP_BUCKET_REQUIREMENTS: 'encryption,versioning',
      VAULTDR_S3_ADMIN_CREDENTIALS_FILE: '/run/secrets/admin',
      VAULTDR_RESTORE_UNSEAL_SHARES_FILE: '/run/secrets/shares',
      VAULTDR_RESTORE_CHECK_PATHS: 'secret/data/app/db, secret/data/app/api',
      VAULTDR_RESTORE_RTO_TARGET_SECONDS: '600',
    });
    assert.deepEqual(cfg.backup.bucketRequirements, ['encryption', 'versioning']);
    assert.equal(cfg.s3.adminCredentialsFile, '/run/secrets/admin');
    assert.equal(cfg.restore.unsealSharesFile, '/run/secrets/shares');
    assert.deepEqual(cfg.restore.checkPaths, ['secret/data/app/db', 'secret/data/app/api']);
    assert.equal(cfg.restore.rtoTargetSeconds, 600);
    assert.throws(() => load({ VAULTDR_BACKUP_BUCKET_REQUIREMENTS: 'encryption,magic' }), /backup\.bucketRequirements\.1: Invalid enum value/);
  });
});
