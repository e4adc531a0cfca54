// `npm run hosts:up|hosts:down|hosts:status` — the local old/new VPS hosts of the migration (stack/mailhosts.ts).
import { acquireHostsLease, hostsDown, hostsInfo, hostsStatus, hostsUp } from './mailhosts';

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'up': {
      const r = await hostsUp((l) => console.log(`hosts: ${l}`));
      for (const h of Object.values(r.info.hosts)) console.log(`hosts: ${h.name} ssh root@${h.address} host key ${h.hostKeyFingerprint}`);
      console.log(`hosts: provisioning key ${r.info.provisionKey}; relay credentials ${r.info.relay.credentialsFile}; zone ${r.info.dns.zoneFile}`);
      console.log(`hosts: up in ${r.seconds.toFixed(1)}s`);
      return 0;
    }
    case 'down': {
      // Not from under a test that holds the hosts (it waits up to 2 min for it to finish).
      const release = await acquireHostsLease(120_000);
      try {
        await hostsDown((l) => console.log(`hosts: ${l}`));
      } finally {
        release();
      }
      return 0;
    }
    case 'status': {
      const all = await hostsStatus();
      for (const s of all) console.log(`${s.name.padEnd(14)} ${s.up ? 'up  ' : 'DOWN'}  ${s.detail}`);
      return all.every((s) => s.up) ? 0 : 3;
    }
    case 'info':
      console.log(JSON.stringify(hostsInfo(), null, 2));
      return 0;
    default:
      console.error('usage: hosts up|down|status|info');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`hosts: ${err.message}`);
    process.exit(1);
  },
);
