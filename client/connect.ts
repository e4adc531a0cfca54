// A Temporal client configured like the worker: same namespace, same payload codec, so every
// input the CLI sends is encrypted before it reaches the server.
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../infra/config';
import { dataConverter, EncryptionCodec, loadKeyring } from '../infra/temporal/codec';
import { temporalConnectError, temporalConnectionOptions } from '../infra/temporal/connection';

export async function connectClient(cfg: Config): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(cfg), connectTimeout: 5000 });
  } catch (err) {
    if ((err as Error).name === 'ConfigError') throw err;
    throw temporalConnectError(cfg, err);
  }
  return new Client({
    connection,
    namespace: cfg.temporal.namespace,
    dataConverter: dataConverter(new EncryptionCodec(loadKeyring(cfg.codec.keysFile))),
  });
}
