// docker-compose.yml's `ha` profile, PostgreSQL part: resolved by docker-compose itself (no Docker
// engine here), and kept in step with the HA harness the drill and bench run against: the same
// Patroni settings, the same HAProxy sections, the same host ports, and Temporal's persistence
// switched onto the HA cluster through HAProxy.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { COMPOSE_PG_NODES, PATRONI_DCS, PATRONI_PIN, PG_NODES, PG_PARAMETERS, PG_PORTS, postgresHaproxySections } from '../stack/ha/postgres';
import { PROJECT_ROOT } from './helpers/stack';

interface Svc {
  profiles?: string[];
  image?: string;
  build?: { dockerfile?: string };
  environment?: Record<string, string>;
  ports?: ({ target: number; published: string | number; host_ip?: string } | string)[];
  volumes?: ({ source?: string; target: string } | string)[];
  secrets?: { source: string }[];
  depends_on?: Record<string, { condition: string }>;
}

function yamlToJson(text: string): unknown {
  // PyYAML from the system Python (docker-compose itself runs on it); no new npm dependency.
  const res = spawnSync('/usr/bin/python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: text, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout);
}

function composeConfig(env: Record<string, string>): { services: Record<string, Svc> } {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-hacompose-'));
  try {
    const envFile = path.join(scratch, 'empty.env');
    fs.writeFileSync(envFile, '');
    const res = spawnSync('docker-compose', ['--env-file', envFile, '-f', 'docker-compose.yml', '--profile', 'ha', 'config'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (res.error) assert.fail(`docker-compose is not installed (scripts/ensure-deps.sh --test-tools): ${res.error.message}`);
    assert.equal(res.status, 0, res.stderr);
    return yamlToJson(res.stdout) as { services: Record<string, Svc> };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Mounts as {source, target}; docker-compose 1.29 prints them as "source:target[:mode]". */
function mounts(svc: Svc): { source: string; target: string }[] {
  return (svc.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target };
    const [source, target] = v.split(':');
    return { source: source!, target: target! };
  });
}

/** Published ports; docker-compose 1.29 prints them as "ip:published:target". */
function ports(svc: Svc): { published: number; target: number }[] {
  return (svc.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { published: Number(p.published), target: Number(p.target) };
    const m = /^(?:(.+):)?(\d+):(\d+)(?:\/\w+)?$/.exec(p);
    assert.ok(m, `unexpected port syntax "${p}"`);
    return { published: Number(m[2]), target: Number(m[3]) };
  });
}

describe('docker-compose `ha` profile: HA PostgreSQL', function () {
  this.timeout(120_000);
  let cfg: { services: Record<string, Svc> };
  before(() => {
    cfg = composeConfig({ VAULTDR_TEMPORAL_DB_HOST: 'haproxy', VAULTDR_TEMPORAL_DB_PORT: '5440' });
  });

  it('runs etcd, three Patroni/PostgreSQL nodes and HAProxy only in the ha profile', () => {
    for (const name of ['etcd', 'patroni-1', 'patroni-2', 'patroni-3', 'haproxy']) assert.deepEqual(cfg.services[name]?.profiles, ['ha'], name);
    for (const name of ['postgresql', 'temporal', 'openbao']) assert.equal(cfg.services[name]?.profiles, undefined, `${name} must stay in the default deployment`);
  });

  it('puts Temporal\'s persistence on the HA cluster through HAProxy\'s read-write port when asked, and on the single server by default', () => {
    const t = cfg.services.temporal!.environment!;
    assert.equal(t.POSTGRES_SEEDS, 'haproxy');
    assert.equal(String(t.DB_PORT), String(PG_PORTS.haproxyReadWrite));
    const s = cfg.services['temporal-schema']!.environment!;
    assert.equal(s.SQL_HOST, 'haproxy');
    assert.equal(String(s.SQL_PORT), String(PG_PORTS.haproxyReadWrite));
    const plain = composeConfig({});
    assert.equal(plain.services.temporal!.environment!.POSTGRES_SEEDS, 'postgresql');
    assert.equal(String(plain.services.temporal!.environment!.DB_PORT), '5432');
    // The role Temporal logs in with exists in the HA cluster: Patroni's post_bootstrap creates it.
    const patroni = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'patroni', 'patroni.yml'), 'utf8');
    assert.match(patroni, /post_bootstrap: \/usr\/local\/bin\/patroni-post-bootstrap/);
    assert.match(fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'patroni', 'post-bootstrap.sh'), 'utf8'), /CREATE ROLE temporal LOGIN CREATEDB/);
    assert.ok(cfg.services['patroni-1']!.secrets!.some((x) => x.source === 'temporal_db_password'));
  });

  it('runs HAProxy on the committed config, whose PostgreSQL sections are the harness\'s for the compose nodes', () => {
    const h = cfg.services.haproxy!;
    assert.ok(mounts(h).some((v) => v.source === path.join(PROJECT_ROOT, 'deploy', 'haproxy', 'haproxy.cfg') && v.target === '/usr/local/etc/haproxy/haproxy.cfg'));
    const committed = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'haproxy', 'haproxy.cfg'), 'utf8');
    assert.ok(committed.includes(postgresHaproxySections(COMPOSE_PG_NODES, '*')), 'deploy/haproxy/haproxy.cfg differs from postgresHaproxySections(COMPOSE_PG_NODES, "*")');
    assert.deepEqual(ports(h).map((p) => p.target).sort(), [PG_PORTS.haproxyReadOnly, PG_PORTS.haproxyReadWrite].sort());
    for (const n of ['patroni-1', 'patroni-2', 'patroni-3']) assert.equal(h.depends_on?.[n]?.condition, 'service_healthy');
  });

  it('gives each Patroni node its own name, data volume and the harness\'s host ports, with passwords only from secret files', () => {
    const names = new Set<string>();
    const volumes = new Set<string>();
    COMPOSE_PG_NODES.forEach((node, i) => {
      const svc = cfg.services[node.host]!;
      assert.equal(svc.environment!.PATRONI_NAME, node.name);
      assert.equal(svc.environment!.PATRONI_RESTAPI_CONNECT_ADDRESS, `${node.host}:${node.restPort}`);
      names.add(svc.environment!.PATRONI_NAME!);
      volumes.add(mounts(svc).find((v) => v.target === '/var/lib/postgresql/data')!.source);
      const published = ports(svc).map((p) => `${p.published}:${p.target}`).sort();
      assert.deepEqual(published, [`${PG_NODES[i]!.pgPort}:5432`, `${PG_NODES[i]!.restPort}:8008`].sort());
      assert.deepEqual(svc.secrets!.map((x) => x.source).sort(), ['pg_replication_password', 'pg_superuser_password', 'temporal_db_password']);
      assert.ok(!Object.keys(svc.environment!).some((k) => /PASSWORD/.test(k)), `${node.host} has a password in its environment`);
      assert.equal(svc.depends_on?.etcd?.condition, 'service_healthy');
    });
    assert.equal(names.size, 3);
    assert.equal(volumes.size, 3);
  });

  it('builds Patroni at the harness\'s pin and runs the harness\'s failover settings', () => {
    const dockerfile = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'docker', 'Dockerfile.patroni'), 'utf8');
    assert.ok(dockerfile.includes(`'${PATRONI_PIN}'`), `Dockerfile.patroni does not install ${PATRONI_PIN}`);
    assert.equal(cfg.services['patroni-1']!.build?.dockerfile, 'deploy/docker/Dockerfile.patroni');
    const y = yamlToJson(fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'patroni', 'patroni.yml'), 'utf8')) as { bootstrap: { dcs: Record<string, unknown> & { postgresql: { parameters: Record<string, unknown> } } } };
    const { postgresql, ...dcs } = y.bootstrap.dcs;
    assert.deepEqual(dcs, { ...PATRONI_DCS });
    assert.deepEqual(
      Object.fromEntries(Object.entries(postgresql.parameters).map(([k, v]) => [k, String(v)])),
      Object.fromEntries(Object.entries(PG_PARAMETERS).map(([k, v]) => [k, String(v)])),
    );
  });
});
