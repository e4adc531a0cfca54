// `npm run worker`: the vault-dr worker process. Parses config once, starts the codec endpoint
// for the Web UI, runs the Temporal worker until SIGTERM/SIGINT, then drains and exits.
import * as http from 'node:http';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { loadConfig, type Config } from '../infra/config';
import { EncryptionCodec, loadKeyring } from '../infra/codec';
import { createCodecServer, readTokensFile } from '../infra/codecServer';
import { buildWorker } from './worker';
import type { ShareIntake } from '../infra/shareIntake';
import { registerStateGauges, startMetricsServer } from '../infra/metrics';

export function startCodecServer(cfg: Config, intake?: ShareIntake): Promise<http.Server> {
  const server = createCodecServer({
    intake,
    codec: new EncryptionCodec(loadKeyring(cfg.codec.keysFile)),
    tokens: readTokensFile(cfg.codec.tokensFile),
    corsOrigins: cfg.codec.corsOrigins,
    anonymousLoopbackOrigins: cfg.codec.anonymousLoopbackOrigins,
  });
  const [host, port] = cfg.codec.listen.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => resolve(server));
  });
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  const logger = new DefaultLogger(cfg.worker.logLevel);
  Runtime.install({
    logger,
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
  });
  const { worker, connection, intake, clients } = await buildWorker(cfg);
  let metricsServer: http.Server | undefined;
  if (cfg.metrics.listen) {
    registerStateGauges({ cfg, s3: clients.s3, bao: clients.bao });
    metricsServer = await startMetricsServer(cfg.metrics.listen);
    logger.info('metrics endpoint listening', { listen: cfg.metrics.listen });
  }
  const codecServer = await startCodecServer(cfg, intake);
  logger.info('codec endpoint listening', { listen: cfg.codec.listen });
  logger.info('worker starting', { taskQueue: cfg.temporal.taskQueue, namespace: cfg.temporal.namespace, temporal: cfg.temporal.address });
  try {
    await worker.run(); // resolves after a shutdown signal once in-flight tasks drained
  } finally {
    codecServer.close();
    metricsServer?.close();
    await connection.close();
    logger.info('worker stopped');
  }
}

if (require.main === module) {
  main().catch((err: Error) => {
    // One clear line, no stack for configuration mistakes.
    process.stderr.write(`vaultdr worker: ${err.name === 'ConfigError' ? err.message : err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
