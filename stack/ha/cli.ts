// `npm run ha:up|ha:down|ha:status` — the HA harness (three OpenBao nodes, PostgreSQL under Patroni,
// one HAProxy, audit shippers). `ha:up -- --only vault|postgres` brings up one half.
import { haDown, haStatus, haUp } from './index';
import { haDir } from './proc';

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'up': {
      const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
      if (only !== undefined && only !== 'vault' && only !== 'postgres') {
        console.error('usage: ha up [--only vault|postgres]');
        return 2;
      }
      const r = await haUp((l) => console.log(`ha: ${l}`), { vault: only !== 'postgres', postgres: only !== 'vault' });
      for (const s of r.steps) console.log(`ha: ${s}`);
      console.log(`ha: up in ${r.seconds.toFixed(1)}s; state and logs in ${haDir()}`);
      return 0;
    }
    case 'down':
      for (const l of await haDown()) console.log(`ha: ${l}`);
      return 0;
    case 'status': {
      const s = await haStatus();
      for (const l of s.lines) console.log(l);
      return s.healthy ? 0 : 3;
    }
    default:
      console.error('usage: ha up|down|status');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`ha: ${err.message}`);
    process.exit(1);
  },
);
