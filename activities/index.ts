// Assembles every activity group from the built clients; the worker registers the result.
import type { Config } from '../infra/config';
import type { Clients } from '../infra/clients';
import type { ShareIntake } from '../infra/shareIntake';
import { backupActivities } from './backup';
import { mailActivities } from './mail';
import { notifyActivities } from './notify';
import { ChannelSecretStore } from '../infra/alertChannels';
import { objectStoreActivities } from './objectStore';
import { restoreActivities } from './restore';
import { vaultActivities } from './vault';

export function createActivities(cfg: Config, clients: Clients, intake?: ShareIntake) {
  return {
    ...vaultActivities({ bao: clients.bao }),
    ...objectStoreActivities({ s3: clients.s3, bucket: cfg.s3.bucket, endpoint: cfg.s3.endpoint ?? `aws:${cfg.s3.region}` }),
    ...mailActivities({ mail: clients.mail, host: cfg.smtp.host, port: cfg.smtp.port }),
    ...backupActivities({ bao: clients.bao, s3: clients.s3, cfg }),
    ...restoreActivities({ s3: clients.s3, cfg, intake }),
    ...notifyActivities({
      mail: clients.mail,
      s3: clients.s3,
      bucket: cfg.s3.bucket,
      from: cfg.smtp.from,
      to: cfg.smtp.alertTo,
      dedupWindowMinutes: cfg.alerts.dedupWindowMinutes,
      channelSecrets: new ChannelSecretStore(clients.bao, cfg.backup.kvMount, cfg.alerts.channelSecretsPath),
    }),
  };
}
