// `npm run stack:up|down|status` — start, stop and inspect the local real-server stack.
import { stackDown, stackStatus, stackUp, startWorker, stopWorker, URLS } from './stack';

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'up': {
      const r = await stackUp((l) => console.log(`stack: ${l}`));
      for (const i of r.install) console.log(`stack: install ${i.step}: ${i.skipped ? 'cached' : `${i.seconds.toFixed(1)}s`}`);
      for (const b of r.bootstrap) console.log(`stack: openbao: ${b}`);
      console.log(`stack: up in ${r.seconds.toFixed(1)}s; config ${r.configFile}`);
      console.log(`stack: Temporal UI ${URLS.temporalUi}  OpenBao ${URLS.openbao}  S3 ${URLS.s3}  Mailpit ${URLS.mailpit}`);
      console.log(`stack: Prometheus ${URLS.prometheus}  Alertmanager ${URLS.alertmanager}  Slack/PagerDuty stand-in ${URLS.saasSink}`);
      return 0;
    }
    case 'worker-start':
      console.log(`stack: workers: ${await startWorker()}`);
      return 0;
    case 'worker-stop':
      console.log(`stack: workers: ${await stopWorker()}`);
      return 0;
    case 'down':
      for (const r of await stackDown()) console.log(`stack: ${r.name}: ${r.result}`);
      return 0;
    case 'status': {
      const all = await stackStatus();
      for (const s of all) console.log(`${s.name.padEnd(16)} ${s.healthy ? 'healthy' : s.running ? 'UNHEALTHY' : 'stopped'}${s.pid ? ` pid ${s.pid}` : ''}  log ${s.log}`);
      // The workers are optional (tests run their own); the servers must all be healthy.
      return all.filter((s) => !s.name.startsWith('worker-')).every((s) => s.healthy) ? 0 : 3;
    }
    default:
      console.error('usage: stack up|down|status|worker-start|worker-stop');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`stack: ${err.message}`);
    process.exit(1);
  },
);
