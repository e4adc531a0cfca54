// MailU's files as the mail-host adapters write them, over an SSH session: `mailu.env` (KEY=VALUE
// lines; only the keys we set change, comments and other keys stay), `dkim/<domain>.<selector>.key`,
// and a copy of both taken before the first change (the compensation restores it). Contents travel
// on stdin and land through a temporary file + rename, so a crash never leaves a half-written file.
import type { SshSession } from '../ssh/client';

/** Single-quotes a value for /bin/sh. */
export const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Sets `values` in an env file's text: replaces existing KEY= lines in place, appends the others. */
export function updateEnv(text: string, values: Record<string, string>): string {
  const left = new Map(Object.entries(values));
  const lines = text.split('\n').map((line) => {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line);
    if (!m || !left.has(m[1]!)) return line;
    const v = left.get(m[1]!)!;
    left.delete(m[1]!);
    return `${m[1]}=${v}`;
  });
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  for (const [k, v] of left) lines.push(`${k}=${v}`);
  return `${lines.join('\n')}\n`;
}

/** Reads KEY=VALUE pairs (no shell expansion: MailU reads the file as docker compose's env_file does). */
export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

/** Writes `content` to `file` atomically with `mode` and `owner` (user[:group]). */
export async function writeFileAtomic(s: SshSession, file: string, content: string, mode: string, owner?: string): Promise<void> {
  const tmp = `${file}.vaultdr-tmp`;
  const chown = owner ? ` && chown ${sq(owner)} ${sq(tmp)}` : '';
  await s.run(`writing ${file}`, `set -e; umask 077; mkdir -p "$(dirname ${sq(file)})"; cat > ${sq(tmp)}; chmod ${mode} ${sq(tmp)}${chown} && mv -f ${sq(tmp)} ${sq(file)}`, content);
}

export async function readFileIfExists(s: SshSession, file: string): Promise<string | undefined> {
  const r = await s.exec(`cat ${sq(file)} 2>/dev/null || echo VAULTDR-ABSENT >&2`);
  return r.stderr.includes('VAULTDR-ABSENT') ? undefined : r.stdout;
}

/**
 * Copies `files` (absolute paths, missing ones noted) into `<dir>` once: a retried step keeps the
 * first copy, so the compensation restores what was there before the migration, not its own output.
 */
export async function snapshotFiles(s: SshSession, dir: string, files: string[]): Promise<{ dir: string; kept: string[]; absent: string[]; reused: boolean }> {
  const reused = (await s.exec(`test -f ${sq(`${dir}/.complete`)}`)).code === 0;
  if (!reused) {
    const script = [
      'set -e',
      `rm -rf ${sq(dir)}; mkdir -p ${sq(dir)}; chmod 700 ${sq(dir)}`,
      ...files.map((f, i) => `if [ -e ${sq(f)} ]; then cp -a ${sq(f)} ${sq(`${dir}/${i}`)}; echo ${i} >> ${sq(`${dir}/present`)}; fi`),
      `touch ${sq(`${dir}/present`)} ${sq(`${dir}/.complete`)}`,
    ].join('\n');
    await s.run('keeping the previous mail configuration', script);
  }
  const present = new Set((await s.run('reading the kept configuration', `cat ${sq(`${dir}/present`)}`)).split('\n').filter(Boolean).map(Number));
  return { dir, reused, kept: files.filter((_, i) => present.has(i)), absent: files.filter((_, i) => !present.has(i)) };
}

/** Puts back what snapshotFiles kept: files that existed return, files that did not are removed. */
export async function restoreFiles(s: SshSession, dir: string, files: string[]): Promise<string[]> {
  if ((await s.exec(`test -f ${sq(`${dir}/.complete`)}`)).code !== 0) return [];
  const script = ['set -e', `present=$(cat ${sq(`${dir}/present`)})`, ...files.map((f, i) => `if echo "$present" | grep -qx ${i}; then cp -a ${sq(`${dir}/${i}`)} ${sq(f)}; else rm -f ${sq(f)}; fi`)].join('\n');
  await s.run('restoring the previous mail configuration', script);
  return files;
}
