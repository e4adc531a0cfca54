// Test harness: a throwaway PostgreSQL cluster (Debian postgresql-15 binaries, /usr/lib/postgresql/15)
// on a free loopback port, password (SCRAM) authentication over TCP, run as the `postgres` system
// user when started as root (initdb refuses root). Data in a temp dir removed by stop().
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../infra/vault/stagingVault';

export const PG_BIN = process.env.VAULTDR_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface ThrowawayPostgres {
  port: number;
  /** postgres://postgres:<pw>@127.0.0.1:<port>/postgres */
  superuserUrl: string;
  dir: string;
  stop(): Promise<void>;
}

export function postgresAvailable(): boolean {
  return fs.existsSync(path.join(PG_BIN, 'initdb')) && fs.existsSync(path.join(PG_BIN, 'pg_ctl'));
}

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const root = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultdr-pg-'));
  const data = path.join(dir, 'data');
  const password = crypto.randomBytes(18).toString('base64url');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  if (root) {
    const pw = execFileSync('id', ['-u', 'postgres']).toString().trim();
    const gid = execFileSync('id', ['-g', 'postgres']).toString().trim();
    fs.chownSync(dir, Number(pw), Number(gid));
    fs.chownSync(pwfile, Number(pw), Number(gid));
  }
  const run = (bin: string, args: string[]) =>
    root ? execFileSync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, bin), ...args], { stdio: 'pipe' }) : execFileSync(path.join(PG_BIN, bin), args, { stdio: 'pipe' });
  run('initdb', ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', '-E', 'UTF8']);
  const port = await freePort();
  run('pg_ctl', ['-D', data, '-l', path.join(dir, 'pg.log'), '-w', '-t', '30', '-o', `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir}`, 'start']);
  const stop = async () => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    } catch {
      // already stopped
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { port, superuserUrl: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`, dir, stop };
}
