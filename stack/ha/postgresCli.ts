// `node lib/stack/ha/postgresCli.js up|down|status` — the PostgreSQL half of the HA harness on its own
// (the combined `npm run ha:*` commands call the same postgresUp/postgresDown/postgresStatus).
import { postgresDown, postgresStatus, postgresUp } from './postgres';

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'up': {
      const r = await postgresUp({ log: (l) => console.log(`ha-postgres: ${l}`) });
      for (const b of r.bootstrap) console.log(`ha-postgres: ${b}`);
      console.log(`ha-postgres: up in ${r.seconds.toFixed(1)}s`);
      return 0;
    }
    case 'down':
      for (const r of await postgresDown()) console.log(`ha-postgres: ${r.name}: ${r.result}`);
      return 0;
    case 'status': {
      const s = await postgresStatus();
      for (const p of s.processes) console.log(`${p.name.padEnd(12)} ${p.healthy ? 'healthy' : p.running ? 'UNHEALTHY' : 'stopped'}${p.pid ? ` pid ${p.pid}` : ''}  log ${p.log}`);
      const h = s.health;
      console.log(`primary ${h.primary ?? '-'}; replicas ${h.replicas.map((r) => `${r.name}${r.sync ? ' (sync)' : ''} lag ${r.lagBytes} B`).join(', ') || '-'}`);
      for (const p of h.problems) console.log(`problem: ${p}`);
      return h.healthy ? 0 : 3;
    }
    default:
      console.error('usage: postgresCli up|down|status');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`ha-postgres: ${err.message}`);
    process.exit(1);
  },
);
