// The KV inventory recorded in backup manifests: OpenBao's paged detailed LIST against a model of
// a KV tree (pages, nesting, a folder deleted mid-walk, a server or policy without the endpoint,
// refusals), and against the real OpenBao of the local stack with the worker's own AppRole and
// policy, where both methods must count the same tree.
import assert from 'node:assert/strict';
import { BaoError } from '../infra/vault/bao';
import { buildClients } from '../infra/clients';
import { kvInventory, PAGE, type ApiAnswer, type KvAccess } from '../infra/vault/kvInventory';
import { bao } from './helpers/inspect';
import { ensureStack } from './helpers/stack';

/** A KV v2 mount as OpenBao answers it: secrets (path → current_version) under nested folders. */
function modelMount(secrets: Record<string, number>, opts: { detailed?: 'yes' | 'unsupported' | 'forbidden'; refuse?: RegExp; vanish?: string } = {}) {
  const calls: string[] = [];
  const children = (folder: string) => {
    const keys = new Set<string>();
    for (const p of Object.keys(secrets)) {
      if (!p.startsWith(folder)) continue;
      const rest = p.slice(folder.length);
      const slash = rest.indexOf('/');
      keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    return [...keys].sort();
  };
  const access: KvAccess = {
    async get(apiPath: string): Promise<ApiAnswer> {
      calls.push(apiPath);
      if (opts.refuse?.test(apiPath)) return { status: 500, body: { errors: ['storage failure'] } };
      const [p, query = ''] = apiPath.split('?');
      const q = new URLSearchParams(query);
      const m = /^secret\/(detailed-metadata|metadata)\/(.*)$/.exec(p!);
      if (!m) return { status: 404, body: { errors: [] } };
      const [, kind, rest] = m;
      if (kind === 'detailed-metadata') {
        if (opts.detailed === 'unsupported') return { status: 200, body: { data: null, warnings: ['Invalid path for a versioned K/V secrets engine.'] } };
        if (opts.detailed === 'forbidden') return { status: 403, body: { errors: ['permission denied'] } };
      }
      if (q.get('list') === 'true') {
        if (rest === opts.vanish) return { status: 404, body: { errors: [] } }; // listed in its parent, gone when walked
        let keys = children(rest!);
        if (!keys.length) return { status: 404, body: { errors: [] } };
        if (kind === 'metadata') return { status: 200, body: { data: { keys } } };
        const after = q.get('after');
        if (after) keys = keys.filter((k) => k > after);
        keys = keys.slice(0, Number(q.get('limit') ?? keys.length));
        const keyInfo = Object.fromEntries(keys.map((k) => [k, k.endsWith('/') ? {} : { current_version: secrets[`${rest}${k}`] }]));
        return { status: 200, body: { data: { keys, key_info: keyInfo } } };
      }
      if (kind === 'metadata' && rest! in secrets) return { status: 200, body: { data: { current_version: secrets[rest!] } } };
      return { status: 404, body: { errors: [] } };
    },
  };
  return { access, calls };
}

function tree(): Record<string, number> {
  const s: Record<string, number> = { 'top': 3, 'app/db': 2, 'app/deep/er/x': 5 };
  // More than two pages in one folder, including a subfolder key sorted among the leaves.
  for (let i = 0; i < 2 * PAGE + 17; i++) s[`big/s${String(i).padStart(5, '0')}`] = 1 + (i % 3);
  s['big/s00500x/inner'] = 7;
  return s;
}
const expected = (s: Record<string, number>) => ({ paths: Object.keys(s).length, versions: Object.values(s).reduce((a, b) => a + b, 0) });

describe('KV inventory', function () {
  it('counts every secret and sums current versions over detailed LIST pages, one request per page', async () => {
    const s = tree();
    const { access, calls } = modelMount(s);
    const inv = await kvInventory('secret', access);
    assert.deepEqual({ paths: inv.paths, versions: inv.versions }, expected(s));
    assert.equal(inv.method, 'detailed-list');
    assert.ok(calls.every((c) => c.startsWith('secret/detailed-metadata/')), calls.join('\n'));
    // big/ spans three pages; the folders are /, app/, app/deep/, app/deep/er/, big/, big/s00500x/.
    assert.equal(calls.filter((c) => c.startsWith('secret/detailed-metadata/big/?')).length, 3);
    assert.equal(calls.length, 5 + 3);
  });

  it('falls back to one metadata read per secret where the endpoint is missing (HashiCorp Vault) or not granted', async () => {
    const s = tree();
    for (const detailed of ['unsupported', 'forbidden'] as const) {
      const { access, calls } = modelMount(s, { detailed });
      const inv = await kvInventory('secret', access);
      assert.deepEqual({ paths: inv.paths, versions: inv.versions, method: inv.method }, { ...expected(s), method: 'per-secret' }, detailed);
      assert.equal(calls.filter((c) => c.includes('detailed-metadata')).length, 1, `${detailed}: only the probe`);
      assert.equal(calls.filter((c) => !c.includes('?')).length, Object.keys(s).length, `${detailed}: one read per secret`);
    }
  });

  it('an empty mount is 0 / 0, and a folder deleted during the walk counts as empty', async () => {
    assert.deepEqual(await kvInventory('secret', modelMount({}).access), { mount: 'secret', paths: 0, versions: 0, method: 'detailed-list' });
    const s = tree();
    const { access } = modelMount(s, { vanish: 'app/deep/' });
    const inv = await kvInventory('secret', access);
    assert.equal(inv.paths, expected(s).paths - 1);
  });

  it('a refused page fails with the HTTP status and path instead of counting as empty', async () => {
    for (const detailed of ['yes', 'unsupported'] as const) {
      const { access } = modelMount(tree(), { detailed, refuse: /(detailed-metadata\/big\/\?|metadata\/big\/s00010$)/ });
      await assert.rejects(kvInventory('secret', access), (err: BaoError) => {
        assert.ok(err instanceof BaoError);
        assert.equal(err.status, 500);
        assert.match(err.message, /KV inventory: GET secret\/(detailed-metadata|metadata)\/big\/(s00010)?.*HTTP 500: storage failure/);
        return true;
      });
    }
  });

  it('against the stack OpenBao with the worker AppRole: the detailed LIST and the per-secret reads count the same tree', async () => {
    const cfg = await ensureStack();
    const root = `inventory-${Date.now()}`;
    const paths = [`${root}/a`, `${root}/b/c`, `${root}/b/d/e`];
    for (const p of paths) {
      for (let v = 0; v < 2; v++) assert.equal((await bao('POST', `secret/data/${p}`, { data: { v: String(v) } })).status, 200);
    }
    try {
      const client = buildClients(cfg).bao;
      const fast = await kvInventory('secret', { get: (p) => client.apiGet(p) });
      const slow = await kvInventory('secret', { get: (p) => (p.includes('detailed-metadata') ? Promise.resolve({ status: 403, body: {} }) : client.apiGet(p)) });
      assert.equal(fast.method, 'detailed-list', 'the worker policy grants the detailed LIST');
      assert.equal(slow.method, 'per-secret');
      assert.deepEqual({ paths: fast.paths, versions: fast.versions }, { paths: slow.paths, versions: slow.versions });
      assert.ok(fast.paths >= paths.length && fast.versions >= 2 * paths.length, JSON.stringify(fast));
    } finally {
      for (const p of paths) await bao('DELETE', `secret/metadata/${p}`);
    }
  });
});
