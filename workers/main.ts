// `npm run worker`: the vault-dr worker process. Parses config once, starts the codec endpoint
// for the Web UI, runs the Temporal worker until SIGTERM/SIGINT, then drains and exits.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as https from 'node:https';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { ConfigError, loadConfig, type Config } from '../infra/config';
import { EncryptionCodec, loadKeyring } from '../infra/codec';
import { createCodecServer, readTokensFile } from '../infra/codecServer';
import { buildWorker } from './worker';
import type { ShareIntake } from '../infra/shareIntake';
import { registerStateGauges, startMetricsServer } from '../infra/metrics';
import { describeTemporalConnection } from '../infra/temporalConnection';

function readCodecTlsFile(file: string, field: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`config: cannot read ${field} file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Which ways into the codec endpoint this configuration opens (for the start-up log line). */
export function codecAccessModes(cfg: Config): Record<string, string | boolean> {
  return {
    listen: cfg.codec.listen,
    https: !!cfg.codec.tls,
    oidc: cfg.codec.oidc?.issuer ?? false,
    staticTokens: !!cfg.codec.tokensFile,
    loopbackDevOrigins: cfg.codec.anonymousLoopbackOrigins.join(' ') || false,
  };
}

export function startCodecServer(cfg: Config, intake?: ShareIntake): Promise<http.Server | https.Server> {
  const tls = cfg.codec.tls && { cert: readCodecTlsFile(cfg.codec.tls.certFile, 'codec.tls.certFile'), key: readCodecTlsFile(cfg.codec.tls.keyFile, 'codec.tls.keyFile') };
  const server = createCodecServer({
    intake,
    codec: new EncryptionCodec(loadKeyring(cfg.codec.keysFile)),
    tokens: readTokensFile(cfg.codec.tokensFile),
    corsOrigins: cfg.codec.corsOrigins,
    anonymousLoopbackOrigins: cfg.codec.anonymousLoopbackOrigins,
    oidc: cfg.codec.oidc,
    tls,
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
  logger.info('codec endpoint listening', codecAccessModes(cfg));
  // The Web UI sends its access token only to an https codec endpoint (or one behind a TLS proxy).
  if (cfg.codec.oidc && !cfg.codec.tls) logger.warn('codec.oidc is set but codec.tls is not: the Web UI passes access tokens only to https endpoints; terminate TLS in front of the codec endpoint');
  logger.info('worker starting', { taskQueue: cfg.temporal.taskQueue, namespace: cfg.temporal.namespace, ...describeTemporalConnection(cfg) });
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
