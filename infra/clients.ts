// Builds the real clients from a parsed Config. Only workers/ and client/ call these;
// activities receive the built clients through their factories.
import { S3Client } from '@aws-sdk/client-s3';
import nodemailer, { type Transporter } from 'nodemailer';
import { BaoClient } from './vault/bao';
import { ConfigError, type Config } from './config';
import { asObject, readSecretJson } from './secretFile';

export function buildS3Client(cfg: Config['s3']): S3Client {
  let credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  if (cfg.credentialsFile) {
    const file = cfg.credentialsFile;
    const json = asObject(readSecretJson(file, (problem) => new ConfigError(`config: s3.credentialsFile ${file} is ${problem}`)));
    if (typeof json?.accessKeyId !== 'string' || typeof json.secretAccessKey !== 'string') throw new ConfigError(`config: s3.credentialsFile ${file}: expected "accessKeyId" and "secretAccessKey" strings`);
    credentials = { accessKeyId: json.accessKeyId, secretAccessKey: json.secretAccessKey };
  }
  return new S3Client({
    endpoint: cfg.endpoint,
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle,
    credentials,
    // The SDK retries transient errors itself; Temporal retries the activity on top.
    maxAttempts: 3,
  });
}

export type MailTransport = Transporter;

export function buildMailTransport(cfg: Config['smtp']): MailTransport {
  return nodemailer.createTransport({
    host: cfg.host,
    port: cfg.port,
    secure: cfg.secure,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
}

export function buildBaoClient(cfg: Config['vault']): BaoClient {
  return new BaoClient(cfg);
}

export interface Clients {
  bao: BaoClient;
  s3: S3Client;
  mail: MailTransport;
}

export function buildClients(cfg: Config): Clients {
  return { bao: buildBaoClient(cfg.vault), s3: buildS3Client(cfg.s3), mail: buildMailTransport(cfg.smtp) };
}
