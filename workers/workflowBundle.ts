// The workflow bundle, built once with the code instead of at every worker start. A workflows-role
// worker given `workflowsPath` runs webpack over the workflow code when it starts: ~25 s on a
// loaded 2-core machine and a start-up peak of ~410 MiB that the idle process keeps (bench/idleRss.ts).
// `node lib/workers/workflowBundle.js` (run by scripts/ensure-deps.sh after tsc) writes the bundle
// next to the built code with a stamp: the SHA-256 of the built code (every .js under lib/ but the
// tests and benchmarks: more than the workflow code reaches, so no import can be missed) and of
// package-lock.json. A worker uses the bundle only when the stamp still matches what is on disk;
// otherwise (not built, code changed since) it bundles at start-up as before and says why. A stale
// bundle can never run.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../infra/temporal/codec';

const LIB = path.join(__dirname, '..');
export const BUNDLE_FILE = path.join(LIB, 'workflow-bundle.js');
/** Built code not in the stamp: it never runs in a worker. */
const NOT_WORKER_CODE = new Set(['test', 'bench']);
const stampOf = (bundle: string) => `${bundle}.stamp.json`;

interface Stamp {
  sourcesSha256: string;
  files: number;
  builtAt: string;
}

function listJs(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** The digest the stamp must carry for the bundle to be current (`lib`: the built tree, a test's copy). */
export function sourcesDigest(lib = LIB): { sha256: string; files: number } {
  const hash = crypto.createHash('sha256');
  const lock = path.join(lib, '..', 'package-lock.json');
  const dirs = fs.existsSync(lib) ? fs.readdirSync(lib, { withFileTypes: true }).filter((e) => e.isDirectory() && !NOT_WORKER_CODE.has(e.name)).map((e) => e.name).sort() : [];
  const files = [...dirs.flatMap((d) => listJs(path.join(lib, d))), ...(fs.existsSync(lock) ? [lock] : [])];
  for (const f of files) {
    hash.update(`${path.relative(lib, f)}\0`);
    hash.update(fs.readFileSync(f));
    hash.update('\0');
  }
  return { sha256: hash.digest('hex'), files: files.length };
}

/**
 * The prebuilt bundle's path when it matches the built code, else why it cannot be used. `digest`:
 * the built code's, when the caller already took it (the build takes it once for both uses).
 */
export function prebuiltBundle(lib = LIB, digest?: { sha256: string }): { codePath: string } | { reason: string } {
  const bundle = path.join(lib, path.basename(BUNDLE_FILE));
  let stamp: Stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(stampOf(bundle), 'utf8')) as Stamp;
  } catch {
    return { reason: 'no prebuilt workflow bundle (run scripts/ensure-deps.sh or `node lib/workers/workflowBundle.js`)' };
  }
  if (!fs.existsSync(bundle)) return { reason: `${bundle} is missing` };
  if (stamp.sourcesSha256 !== (digest ?? sourcesDigest(lib)).sha256) return { reason: `the prebuilt workflow bundle (${stamp.builtAt}) is older than the built workflow code` };
  return { codePath: bundle };
}

/** Writes `code` as the bundle of the tree `lib` with the stamp of `digest` (the digest taken before bundling). */
export function saveBundle(lib: string, code: string, digest: { sha256: string; files: number }): void {
  const bundle = path.join(lib, path.basename(BUNDLE_FILE));
  const stamp: Stamp = { sourcesSha256: digest.sha256, files: digest.files, builtAt: new Date().toISOString() };
  // Each written to a temporary name and renamed: a worker starting meanwhile never reads half a file.
  for (const [file, text] of [
    [bundle, code],
    [stampOf(bundle), JSON.stringify(stamp, null, 2) + '\n'],
  ] as const) {
    fs.writeFileSync(`${file}.${process.pid}.tmp`, text);
    fs.renameSync(`${file}.${process.pid}.tmp`, file);
  }
}

/** Builds the bundle and its stamp; skipped when the stamp is current. */
export async function writeWorkflowBundle(opts: { force?: boolean } = {}): Promise<{ built: boolean; ms: number; bytes: number }> {
  const t0 = performance.now();
  // Taken before bundling: code changed while webpack runs leaves a stamp that no longer matches.
  const before = sourcesDigest();
  if (!opts.force && 'codePath' in prebuiltBundle(LIB, before)) return { built: false, ms: performance.now() - t0, bytes: fs.statSync(BUNDLE_FILE).size };
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(LIB, 'workflows', 'index.js'), failureConverterPath: FAILURE_CONVERTER_PATH, logger: new DefaultLogger('WARN') });
  saveBundle(LIB, code, before);
  return { built: true, ms: performance.now() - t0, bytes: code.length };
}

if (require.main === module) {
  writeWorkflowBundle({ force: process.argv.includes('--force') }).then(
    (r) => {
      process.stdout.write(r.built ? `workflow bundle: built ${BUNDLE_FILE} (${(r.bytes / 1024).toFixed(0)} KiB) in ${(r.ms / 1000).toFixed(1)} s\n` : 'workflow bundle: current\n');
      process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`workflow bundle: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
