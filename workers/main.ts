// `npm run worker`: a vault-dr worker process. Parses config once, runs the roles in `worker.roles`
// (VAULTDR_WORKER_ROLES; default all) — one Temporal Worker per role queue on one connection —
// and the listeners those roles own: the codec endpoint (workflows role), the custodian share
// intake (restore role), the metrics endpoint (backup role). Drains and exits on SIGTERM/SIGINT.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as https from 'node:https';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { ConfigError, loadConfig, type Config } from '../infra/config';
import { EncryptionCodec, loadKeyring } from '../infra/temporal/codec';
import { createCodecServer, readTokensFile } from '../infra/temporal/codecServer';
import { createShareIntakeServer, type ShareIntake } from '../infra/vault/shareIntake';
import { buildWorker } from './worker';
import { scopeConfig } from './roles';
import { metrics, registerStateGauges, startMetricsServer } from '../infra/metrics';
import { describeTemporalConnection } from '../infra/temporal/connection';
import { assertDisjointTokenLists } from '../infra/temporal/codecAuth';

/** Listens on a host:port from the config (one place, so every listener gets the same treatment). */
function listen<S extends http.Server | https.Server>(server: S, hostPort: string): Promise<S> {
  const [host, port] = hostPort.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => resolve(server));
  });
}

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

export function startCodecServer(cfg: Config): Promise<http.Server | https.Server> {
  const tls = cfg.codec.tls && { cert: readCodecTlsFile(cfg.codec.tls.certFile, 'codec.tls.certFile'), key: readCodecTlsFile(cfg.codec.tls.keyFile, 'codec.tls.keyFile') };
  const server = createCodecServer({
    codec: new EncryptionCodec(loadKeyring(cfg.codec.keysFile)),
    tokens: readTokensFile(cfg.codec.tokensFile),
    corsOrigins: cfg.codec.corsOrigins,
    anonymousLoopbackOrigins: cfg.codec.anonymousLoopbackOrigins,
    oidc: cfg.codec.oidc,
    tls,
  });
  return listen(server, cfg.codec.listen);
}

/** The custodian share intake of the restore role: its own address and tokens (never the codec's). */
export function startShareIntakeServer(cfg: Config, intake: ShareIntake): Promise<http.Server> {
  const tokens = readTokensFile(cfg.restore.shareIntakeTokensFile);
  // A custodian's token must never decode history: refuse a token both lists hold.
  assertDisjointTokenLists(readTokensFile(cfg.codec.tokensFile), tokens);
  return listen(createShareIntakeServer({ intake, tokens }), cfg.restore.shareIntakeListen);
}

async function main(): Promise<void> {
  const loaded = loadConfig();
  const logger = new DefaultLogger(loaded.worker.logLevel);
  Runtime.install({
    logger,
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
  });
  const { dropped } = scopeConfig(loaded, loaded.worker.roles);
  // Field names only: the paths may name where secrets live, and the log is no place for that.
  if (dropped.length) logger.info('secrets of other roles ignored', { roles: loaded.worker.roles.join(','), ignored: dropped.join(',') });
  const built = await buildWorker(loaded);
  const { cfg, roles, connection, intake, clients } = built;
  const servers: (http.Server | https.Server)[] = [];
  try {
    // The backup role serves the backup/restore state read at scrape time; the notify role the
    // failure and alert counters its sendAlert increments (BackupFailed and friends read those).
    if ((roles.includes('backup') || roles.includes('notify')) && cfg.metrics.listen) {
      if (roles.includes('backup')) registerStateGauges({ cfg, s3: clients.s3!, bao: clients.bao! });
      else metrics();
      servers.push(await startMetricsServer(cfg.metrics.listen));
      logger.info('metrics endpoint listening', { listen: cfg.metrics.listen, serves: roles.includes('backup') ? 'state gauges and counters' : 'failure and alert counters' });
    }
    if (roles.includes('workflows')) {
      servers.push(await startCodecServer(cfg));
      logger.info('codec endpoint listening', codecAccessModes(cfg));
      // The Web UI sends its access token only to an https codec endpoint (or one behind a TLS proxy).
      if (cfg.codec.oidc && !cfg.codec.tls) logger.warn('codec.oidc is set but codec.tls is not: the Web UI passes access tokens only to https endpoints; terminate TLS in front of the codec endpoint');
    }
    if (intake && cfg.restore.shareIntakeTokensFile) {
      servers.push(await startShareIntakeServer(cfg, intake));
      logger.info('share intake listening', { listen: cfg.restore.shareIntakeListen });
    } else if (intake) {
      logger.warn('share intake off: restore.shareIntakeTokensFile is not set (restores with custodian shares cannot run here)');
    }
    for (const w of built.workers) logger.info('worker starting', { role: w.role, taskQueue: w.taskQueue, namespace: cfg.temporal.namespace, ...describeTemporalConnection(cfg) });
    await built.run(); // resolves after a shutdown signal once in-flight tasks drained
  } finally {
    for (const s of servers) s.close();
    // Workers that never ran keep their hold on the connection; the error that stopped them matters, not this one.
    await connection.close().catch(() => undefined);
    logger.info('worker stopped', { roles: roles.join(',') });
  }
}

if (require.main === module) {
  main().catch((err: Error) => {
    // One clear line, no stack for configuration mistakes.
    process.stderr.write(`vaultdr worker: ${err.name === 'ConfigError' ? err.message : err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
