// The one configuration schema of vault-dr, parsed once by workers/ and client/ and passed down.
// Sources, later wins: built-in defaults < JSON file (VAULTDR_CONFIG or --config, else
// ./.stack/vaultdr.json written by the local stack) < VAULTDR_* environment variables.
// Secrets are never in this object: it holds *paths* of 0600 files that hold them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ErrorType, failure } from '../common/errors';
import { jsonProblem, readProblem } from './secretFile';
import { WORKER_ROLES } from '../common/roles';

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');
// Mail addresses as SMTP accepts them (local hosts such as ops@localhost included).
const mailAddress = z.string().regex(/^[^@\s]+@[^@\s]+$/, 'expected a mail address like ops@example.com');
const httpUrl = z.string().url().refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL');

export const ConfigSchema = z
  .object({
    temporal: z
      .object({
        address: hostPort.default('127.0.0.1:7233'),
        namespace: z.string().min(1).default('default'),
        taskQueue: z.string().min(1).default('vault-dr'),
        /**
         * Transport security to the Temporal frontend (see docs/transport-security.md). TLS is on
         * when `enabled` is true, any file below is set, or an API key is set (Temporal Cloud).
         */
        tls: z
          .object({
            enabled: z.boolean().default(false),
            /** PEM CA bundle the server certificate must chain to; unset: the system roots. */
            caFile: z.string().optional(),
            /** mTLS client certificate and private key (PEM); both or neither. */
            certFile: z.string().optional(),
            keyFile: z.string().optional(),
            /** Name checked against the server certificate (and sent as SNI) instead of the address host. */
            serverName: z.string().min(1).optional(),
          })
          .strict()
          .default({})
          .refine((t) => !!t.certFile === !!t.keyFile, { message: 'set both certFile and keyFile (mTLS) or neither' }),
        /** File holding a Temporal Cloud API key (sent as `authorization: Bearer <key>`; turns TLS on). */
        apiKeyFile: z.string().optional(),
      })
      .strict()
      .default({}),
    vault: z
      .object({
        address: httpUrl.default('http://127.0.0.1:8200'),
        /** AppRole credentials files (role_id and secret_id, one value each); preferred. */
        roleIdFile: z.string().optional(),
        secretIdFile: z.string().optional(),
        /** Alternative: a file holding a token (dev and break-glass use). */
        tokenFile: z.string().optional(),
        approleMount: z.string().default('approle'),
        requestTimeoutMs: z.number().int().positive().default(10_000),
        /** PEM file of the CA that signed OpenBao's TLS certificate (replaces the system roots for OpenBao). */
        caFile: z.string().optional(),
      })
      .strict()
      .default({}),
    s3: z
      .object({
        endpoint: httpUrl.optional(),
        region: z.string().min(1).default('us-east-1'),
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name').default('vault-dr-backups'),
        forcePathStyle: z.boolean().default(true),
        /** JSON file {"accessKeyId": "...", "secretAccessKey": "..."}; else the AWS SDK default chain. */
        credentialsFile: z.string().optional(),
        /** Credentials with bucket-admin rights, used only by `vaultdr bucket apply` (never by a worker). Same format. */
        adminCredentialsFile: z.string().optional(),
      })
      .strict()
      .default({}),
    smtp: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(1025),
        secure: z.boolean().default(false),
        from: mailAddress.default('vault-dr@localhost'),
        alertTo: z.array(mailAddress).default([]),
      })
      .strict()
      .default({}),
    codec: z
      .object({
        /** Keyring JSON file: {"current": "<id>", "keys": {"<id>": "<base64 32 bytes>"}}. */
        keysFile: z.string().min(1),
        listen: hostPort.default('127.0.0.1:8089'),
        /** File with accepted bearer tokens, one per line. */
        tokensFile: z.string().optional(),
        corsOrigins: z.array(z.string()).default(['http://localhost:8233', 'http://127.0.0.1:8233']),
        /** Dev only: browser origins allowed without a token when the peer is loopback. */
        anonymousLoopbackOrigins: z.array(z.string()).default([]),
        /** Serve the endpoint over HTTPS (the Temporal UI sends its access token only to https endpoints). */
        tls: z.object({ certFile: z.string(), keyFile: z.string() }).strict().optional(),
        /**
         * Accept the Web UI's OIDC access tokens (UI setting codec.passAccessToken): JWTs checked
         * against the issuer's JWKS, audience, expiry and, optionally, one required claim value.
         */
        oidc: z
          .object({
            issuer: httpUrl,
            /** Default: jwks_uri from the issuer's /.well-known/openid-configuration. */
            jwksUrl: httpUrl.optional(),
            audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
            /** e.g. {"claim": "groups", "value": "vault-dr-operators"}: a string claim equal to value, or an array claim containing it. */
            require: z.object({ claim: z.string().min(1), value: z.string().min(1) }).strict().optional(),
            /** Clock skew tolerated on exp/nbf. */
            clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({} as never),
    backup: z
      .object({
        /** Public keys backups are encrypted to (written by `vaultdr keys init`). */
        recipientsFile: z.string().optional(),
        /** Validation private key (only on hosts that verify/restore automatically). */
        validationKeyFile: z.string().optional(),
        chunkSize: z.number().int().min(4096).max(16 * 1024 * 1024).default(1024 * 1024),
        /** S3 multipart part size; memory in flight is about partSize × uploadQueueSize. */
        partSize: z.number().int().min(5 * 1024 * 1024).max(512 * 1024 * 1024).default(8 * 1024 * 1024),
        uploadQueueSize: z.number().int().min(1).max(16).default(2),
        /** Bandwidth cap for uploads (a small VPS link shared with mail); unset means no cap. */
        maxUploadBytesPerSecond: z.number().int().positive().optional(),
        retention: z
          .object({
            daily: z.number().int().min(1).default(30),
            monthly: z.number().int().min(0).default(12),
            /** The floor a run's `retention` input may not go below; lowered only here, never from workflow input. */
            minDaily: z.number().int().min(1).default(7),
            minMonthly: z.number().int().min(0).default(3),
          })
          .strict()
          .default({})
          .refine((r) => r.daily >= r.minDaily && r.monthly >= r.minMonthly, { message: 'daily/monthly must not be below minDaily/minMonthly' }),
        /**
         * Object-lock default retention that `vaultdr bucket apply` sets on the bucket (0: none).
         * Every object version written is then undeletable for this many days.
         */
        objectLockDays: z.number().int().min(0).max(36500).default(30),
        objectLockMode: z.enum(['GOVERNANCE', 'COMPLIANCE']).default('GOVERNANCE'),
        /** What the bucket must enforce; drop only what your store cannot do (see README). */
        bucketRequirements: z.array(z.enum(['encryption', 'versioning', 'publicAccessBlock', 'objectLock'])).default(['encryption', 'versioning', 'publicAccessBlock', 'objectLock']),
        kvMount: z.string().default('secret'),
        canaryPath: z.string().default('vault-dr/canary'),
      })
      .strict()
      .default({}),
    restore: z
      .object({
        /** The OpenBao binary that runs throwaway staging servers. */
        baoBinary: z.string().default('bao'),
        /** Parent folder for staging servers' data (each restore gets a subfolder, removed afterwards). */
        stagingDir: z.string().optional(),
        /**
         * Unseal key shares of the backed-up cluster (JSON with "keys_base64", as `bao operator init
         * -format=json` prints), for automated staging validation. A restored snapshot is sealed
         * with its source cluster's keys.
         */
        unsealSharesFile: z.string().optional(),
        /** The restore-validator's AppRole on the backed-up cluster (it is restored with the data). */
        validatorRoleIdFile: z.string().optional(),
        validatorSecretIdFile: z.string().optional(),
        /** KV v2 paths (mount/data/path) that must be readable after a restore. */
        checkPaths: z.array(z.string().regex(/^[\w.-]+\/data\/[\w./-]+$/, 'expected a KV v2 path like secret/data/app/db')).default([]),
        /** Production restores: the cluster to restore into (default vault.address) and a file with a token allowed to force-restore snapshots (break-glass, restore host only). */
        productionAddress: httpUrl.optional(),
        productionTokenFile: z.string().optional(),
        rtoTargetSeconds: z.number().int().positive().default(900),
        rpoTargetSeconds: z.number().int().positive().default(26 * 3600),
        /** Where the restore role's process takes custodian shares (its own listener, not the codec endpoint's). */
        shareIntakeListen: hostPort.default('127.0.0.1:8090'),
        /** Bearer tokens accepted by the share intake, one per line; unset turns the intake off. Never the codec's tokens. */
        shareIntakeTokensFile: z.string().optional(),
      })
      .strict()
      .default({}),
    ha: z
      .object({
        /**
         * The HA harness's state dir (npm run ha:up, $VAULTDR_HA_DIR): node pid files, the HA
         * cluster's dev-custody unseal shares and the drill token. Unset: no failover drills here.
         */
        harnessDir: z.string().optional(),
        /** HAProxy's Vault frontend: the drill writes through it. */
        vaultAddress: httpUrl.default('http://127.0.0.1:8280'),
        /**
         * The HA PostgreSQL cluster the health checks report on (0600 JSON: {"nodes": [{"name",
         * "host", "pgPort", "restPort"}], "monitor": {"user", "password", "database"}, "maxLagBytes",
         * "synchronous"}; a pg_monitor login, never a superuser). The harness writes one
         * (<ha dir>/postgres/monitor.json). Unset: no PostgreSQL part in the health report.
         */
        postgresMonitorFile: z.string().optional(),
      })
      .strict()
      .default({}),
    /**
     * Emergency rotation and the unseal-key ceremonies (docs/runbooks/credential-rotation.md,
     * unseal-key-rotation.md). Runs in the restore role: its host already holds the break-glass
     * token and the staging server; the secrets below are that role's too (workers/roles.ts).
     */
    rotation: z
      .object({
        /** A token with the vaultdr-rotator policy (deploy/openbao/policies/vaultdr-rotator.hcl). */
        tokenFile: z.string().optional(),
        /** KV v2 mount and folder where rotated credentials are delivered (one secret per class and scope; versions keep the old value). */
        kvMount: z.string().default('secret'),
        kvPrefix: z.string().regex(/^[\w.-]+(\/[\w.-]+)*$/, 'expected a KV folder like vault-dr/credentials').default('vault-dr/credentials'),
        /** The class a run started with `{}` rotates, and each class's default scope. */
        defaultClass: z.enum(['approle-secret-id', 'token-lease', 'smtp-relay', 'mailbox-password', 'ssh-key', 'postgres-role', 'channel-secret', 'backup-recipient']).default('token-lease'),
        defaultScopes: z.record(z.string()).default({}),
        /** PostgreSQL: a file holding a superuser connection URL (postgres://user:pw@host:port/db); the role's logins are tested at the same host. */
        postgresSuperuserUrlFile: z.string().optional(),
        /**
         * Every PostgreSQL server of an HA cluster (host:port of each Patroni member, reached directly),
         * when the superuser URL goes through HAProxy's read-write port: a rotated role's new password
         * must work and the old be refused on each (replicas included, read-only), and the role's
         * sessions are ended on each. Empty: only the superuser URL's host is checked.
         */
        postgresNodes: z.array(hostPort).max(16).default([]),
        /**
         * The VPS (migration.hosts.new or .old) whose mail host and authorized_keys the smtp-relay,
         * mailbox-password and ssh-key classes act on, over SSH with migration.sshKeyFile and the
         * migration's mail adapter (migration.mailHost). Unset: a person applies those and confirms.
         */
        host: z.enum(['new', 'old']).optional(),
        /** The restore role's own SSH private key (OpenSSH format) for rotation.host; its public half is in that host's authorized_keys. */
        sshKeyFile: z.string().optional(),
        /** The SMTP relay whose AUTH proves a rotated relay password (and, without rotation.host, a mailbox password). */
        smtpAuthHost: z.string().optional(),
        smtpAuthPort: z.number().int().min(1).max(65535).default(465),
        smtpAuthSecure: z.boolean().default(true),
        /** Unseal-key ceremonies: the cluster whose keys rotate (default vault.address) and a token allowed sys/rotate/root/* and sys/seal. */
        unsealAddress: httpUrl.optional(),
        unsealTokenFile: z.string().optional(),
        /** Custodians' PGP public keys: JSON [{"name", "publicKey": armored}], in share order. */
        custodiansFile: z.string().optional(),
      })
      .strict()
      .default({}),
    migration: z
      .object({
        /** The Vault holding the migration's secrets (default vault.address); the drills point it elsewhere to play "Vault unavailable". */
        vaultAddress: httpUrl.optional(),
        /** AppRole of the migration worker (role vaultdr-migration: read on the migration secrets only). */
        roleIdFile: z.string().optional(),
        secretIdFile: z.string().optional(),
        /** The worker's own migration SSH private key (OpenSSH format); its public half is deployed with the operators' keys. */
        sshKeyFile: z.string().optional(),
        /** KV v2 mount and paths of the secrets (values never leave the activities). */
        kvMount: z.string().default('secret'),
        secrets: z
          .object({
            /** {<operator>: "<ssh public key line>", ...} */
            operatorKeys: z.string().default('vault-dr/migration/ssh-operators'),
            /** {host, port, username, password}: the SMTP relay (smarthost) the mail host sends through. */
            smtpRelay: z.string().default('vault-dr/migration/smtp-relay'),
            /** {email, password}: the mailbox used to verify (submission, IMAP, webmail). */
            mailbox: z.string().default('vault-dr/migration/mailbox'),
            /** {domain, selector, private_key}: the DKIM signing key (PKCS#8 PEM). */
            dkim: z.string().default('vault-dr/migration/dkim'),
          })
          .strict()
          .default({}),
        hosts: z
          .object({
            new: z.object({ address: z.string().min(1), port: z.number().int().min(1).max(65535).default(22), user: z.string().min(1).default('root'), hostKeySha256: z.string().optional() }).strict().optional(),
            old: z.object({ address: z.string().min(1), port: z.number().int().min(1).max(65535).default(22), user: z.string().min(1).default('root'), hostKeySha256: z.string().optional() }).strict().optional(),
          })
          .strict()
          .default({}),
        mailHost: z
          .object({
            adapter: z.enum(['mailu', 'postfix']).default('postfix'),
            root: z.string().default('/mailu'),
            dkimOwner: z.string().default('opendkim'),
            applyCommand: z.string().default('/opt/mailu-local/apply start'),
            passwordCommand: z.string().default('/opt/mailu-local/passwd'),
            /** postfix adapter: applies changed relay settings only (re-render Postfix, reload it). */
            relayApplyCommand: z.string().default('/opt/mailu-local/apply relay'),
            /** Prints Postfix's recent log (delivery status of a relay probe); default by adapter: the log file (postfix), `docker compose logs smtp` (mailu). */
            mailLogCommand: z.string().optional(),
            /** The mailboxes (Maildir tree) copyMailboxes moves; default: /var/mail (postfix), <root>/mail (mailu). */
            mailDir: z.string().regex(/^\/[\w./-]+$/, 'expected an absolute path').optional(),
            /** Owner of the copied mail on the new host (Dovecot's mail user; MailU's dovecot container: 8:12). */
            mailOwner: z.string().regex(/^[\w.-]+(:[\w.-]+)?$/, 'expected user[:group]').default('mail:mail'),
            /** Where the worker reaches the new host's services (submission with SASL, IMAP, webmail). */
            submission: hostPort.optional(),
            /** Submission is implicit TLS (465) rather than STARTTLS (587). */
            submissionTls: z.boolean().default(false),
            imap: hostPort.optional(),
            imapTls: z.boolean().default(false),
            webmailUrl: httpUrl.optional(),
            /** Webmail login form: roundcube (Roundcube's own form) or mailu (/sso/login). */
            webmailKind: z.enum(['roundcube', 'mailu']).default('roundcube'),
            /** CA that signed the host's TLS certificates (test hosts use their own). */
            caFile: z.string().optional(),
            /** Name the host's certificate is checked against when the worker reaches it by address (MailU: HOSTNAMES[0]). */
            tlsServerName: z.string().optional(),
          })
          .strict()
          .default({}),
        /** DNS server (host:port) the DKIM TXT record is checked against; unset: the system resolver. */
        dnsResolver: hostPort.optional(),
        /** CA of the SMTP relay's TLS certificate, for the worker's check of the relay credentials (unset: system roots). */
        relayCaFile: z.string().optional(),
        /** Where the relayed test mail can be read (a Mailpit API): test and local stacks only. */
        relayInboxUrl: httpUrl.optional(),
        /** The address the test mail goes to (through the relay). */
        testRecipient: mailAddress.default('migration-check@example.net'),
        /** The IP address SPF and DMARC are evaluated for (the new host's public address). */
        mailFromIp: z.string().optional(),
      })
      .strict()
      .default({}),
    alerts: z
      .object({
        /** The same alert (workflow type + step + error type) is sent at most once per window. */
        dedupWindowMinutes: z.number().int().min(0).default(360),
        /** KV v2 folder (under backup.kvMount) holding `slack` {webhook_url} and `pagerduty` {routing_key, events_url?}. */
        channelSecretsPath: z.string().default('vault-dr/alerting'),
        /**
         * Where alertDeliveryTest (confirm "inbox") can read what arrived: a Mailpit API and the
         * Slack/PagerDuty stand-in. Test and local stacks only; production confirms by `ack` signals.
         */
        inbox: z.object({ mailpitUrl: httpUrl.optional(), saasSinkUrl: httpUrl.optional() }).strict().default({}),
      })
      .strict()
      .default({}),
    /**
     * DR drills (docs/runbooks/dr-drills.md): which targets a drill may break, where it looks for
     * the alert its fault must raise, and who receives its report.
     */
    drills: z
      .object({
        /**
         * Targets a drDrill may inject faults into: "ha-vault" is the HA OpenBao cluster behind
         * ha.vaultAddress; "mail-vps" is migration.hosts.old/new (vps-compromise quarantines the old
         * host, migrates to the new one and rotates its credentials there). Empty (the default): no
         * drill touches anything; every drill is refused.
         */
        drillableTargets: z.array(z.enum(['ha-vault', 'credential-class', 'mail-vps'])).default([]),
        /**
         * credential-compromise: the credential class a training incident rotates (target
         * "credential-class"). approle-secret-id only: the drill proves new-works/old-refused with
         * its own AppRole logins. The role must be a drill role (never one vault-dr itself logs in
         * with) whose secret-id is stored at <rotation.kvMount>/<rotation.kvPrefix>/approle-secret-id/<role>.
         */
        credentialClass: z.enum(['approle-secret-id']).default('approle-secret-id'),
        credentialScope: z
          .string()
          .regex(/^[\w.-]{1,100}$/, 'expected an AppRole role name like vaultdr-drill')
          .refine((r) => !['vaultdr-worker', 'vaultdr-restore-validator'].includes(r), 'a role vault-dr itself logs in with must never be drilled: use a drill role like vaultdr-drill')
          .default('vaultdr-drill'),
        /** Alertmanager's API (GET /api/v2/alerts): did the monitoring notice the fault, when, on which receiver. */
        alertmanagerUrl: httpUrl.default('http://127.0.0.1:9093'),
        /** The drill distribution list: every report is e-mailed here. */
        distributionList: z.array(mailAddress).default(['dr-drills@localhost']),
      })
      .strict()
      .default({}),
    metrics: z
      .object({
        /** Prometheus endpoint of the worker (/metrics); empty string turns it off. */
        listen: z.union([hostPort, z.literal('')]).default('127.0.0.1:9464'),
      })
      .strict()
      .default({}),
    incident: z
      .object({
        /** Tenant registry as a JSON file ({"tenants": [...]}, see docs/runbooks/breach-response.md); unset: read from Vault KV. */
        tenantsFile: z.string().optional(),
        /** KV v2 path (under backup.kvMount) of the tenant registry when no file is set. */
        tenantRegistryPath: z.string().default('vault-dr/tenants'),
        /** Folder of the versioned notice templates; default: the repo's templates/notices. */
        templatesDir: z.string().optional(),
        /** Who sends the notices, and the contact point they name (GDPR Art. 33(3)(b)). */
        providerName: z.string().min(1).max(200).default('the vault-dr platform operator'),
        contact: mailAddress.default('security@localhost'),
        from: mailAddress.default('security@localhost'),
        /** Training runs send notices here (Mailpit), never through the real relay. */
        trainingSmtp: z.object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(1).max(65535).default(1025) }).strict().default({}),
      })
      .strict()
      .default({}),
    worker: z
      .object({
        logLevel: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
        shutdownGraceMs: z.number().int().min(0).default(10_000),
        /** The roles this process runs (docs/worker-roles.md); each holds only its own secrets. */
        roles: z.array(z.enum(WORKER_ROLES)).min(1).default([...WORKER_ROLES]),
      })
      .strict()
      .default({}),
  })
  .strict()
  // Only the roles that call Vault with the worker's own identity need its credentials.
  .refine((c) => !c.worker.roles.some((r) => r === 'backup' || r === 'notify') || (c.vault.roleIdFile && c.vault.secretIdFile) || c.vault.tokenFile, {
    path: ['vault'],
    message: 'set roleIdFile and secretIdFile (AppRole) or tokenFile',
  });

export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type EnvSpec = { path: string[]; kind: 'string' | 'number' | 'boolean' | 'list' };
/** Environment variables and the config field each one sets. */
export const ENV_VARS: Record<string, EnvSpec> = {
  VAULTDR_TEMPORAL_ADDRESS: { path: ['temporal', 'address'], kind: 'string' },
  VAULTDR_TEMPORAL_NAMESPACE: { path: ['temporal', 'namespace'], kind: 'string' },
  VAULTDR_TASK_QUEUE: { path: ['temporal', 'taskQueue'], kind: 'string' },
  VAULTDR_TEMPORAL_TLS: { path: ['temporal', 'tls', 'enabled'], kind: 'boolean' },
  VAULTDR_TEMPORAL_TLS_CA_FILE: { path: ['temporal', 'tls', 'caFile'], kind: 'string' },
  VAULTDR_TEMPORAL_TLS_CERT_FILE: { path: ['temporal', 'tls', 'certFile'], kind: 'string' },
  VAULTDR_TEMPORAL_TLS_KEY_FILE: { path: ['temporal', 'tls', 'keyFile'], kind: 'string' },
  VAULTDR_TEMPORAL_TLS_SERVER_NAME: { path: ['temporal', 'tls', 'serverName'], kind: 'string' },
  VAULTDR_TEMPORAL_API_KEY_FILE: { path: ['temporal', 'apiKeyFile'], kind: 'string' },
  VAULTDR_VAULT_ADDR: { path: ['vault', 'address'], kind: 'string' },
  VAULTDR_VAULT_ROLE_ID_FILE: { path: ['vault', 'roleIdFile'], kind: 'string' },
  VAULTDR_VAULT_SECRET_ID_FILE: { path: ['vault', 'secretIdFile'], kind: 'string' },
  VAULTDR_VAULT_TOKEN_FILE: { path: ['vault', 'tokenFile'], kind: 'string' },
  VAULTDR_VAULT_CA_FILE: { path: ['vault', 'caFile'], kind: 'string' },
  VAULTDR_S3_ENDPOINT: { path: ['s3', 'endpoint'], kind: 'string' },
  VAULTDR_S3_REGION: { path: ['s3', 'region'], kind: 'string' },
  VAULTDR_S3_BUCKET: { path: ['s3', 'bucket'], kind: 'string' },
  VAULTDR_S3_CREDENTIALS_FILE: { path: ['s3', 'credentialsFile'], kind: 'string' },
  VAULTDR_SMTP_HOST: { path: ['smtp', 'host'], kind: 'string' },
  VAULTDR_SMTP_PORT: { path: ['smtp', 'port'], kind: 'number' },
  VAULTDR_SMTP_SECURE: { path: ['smtp', 'secure'], kind: 'boolean' },
  VAULTDR_ALERT_FROM: { path: ['smtp', 'from'], kind: 'string' },
  VAULTDR_ALERT_TO: { path: ['smtp', 'alertTo'], kind: 'list' },
  VAULTDR_CODEC_KEYS_FILE: { path: ['codec', 'keysFile'], kind: 'string' },
  VAULTDR_CODEC_LISTEN: { path: ['codec', 'listen'], kind: 'string' },
  VAULTDR_CODEC_TOKENS_FILE: { path: ['codec', 'tokensFile'], kind: 'string' },
  VAULTDR_CODEC_TLS_CERT_FILE: { path: ['codec', 'tls', 'certFile'], kind: 'string' },
  VAULTDR_CODEC_TLS_KEY_FILE: { path: ['codec', 'tls', 'keyFile'], kind: 'string' },
  VAULTDR_CODEC_OIDC_ISSUER: { path: ['codec', 'oidc', 'issuer'], kind: 'string' },
  VAULTDR_CODEC_OIDC_JWKS_URL: { path: ['codec', 'oidc', 'jwksUrl'], kind: 'string' },
  VAULTDR_CODEC_OIDC_AUDIENCE: { path: ['codec', 'oidc', 'audience'], kind: 'string' },
  VAULTDR_LOG_LEVEL: { path: ['worker', 'logLevel'], kind: 'string' },
  VAULTDR_INCIDENT_TENANTS_FILE: { path: ['incident', 'tenantsFile'], kind: 'string' },
  VAULTDR_INCIDENT_TENANT_REGISTRY_PATH: { path: ['incident', 'tenantRegistryPath'], kind: 'string' },
  VAULTDR_INCIDENT_CONTACT: { path: ['incident', 'contact'], kind: 'string' },
  VAULTDR_WORKER_ROLES: { path: ['worker', 'roles'], kind: 'list' },
  VAULTDR_SHARE_INTAKE_LISTEN: { path: ['restore', 'shareIntakeListen'], kind: 'string' },
  VAULTDR_SHARE_INTAKE_TOKENS_FILE: { path: ['restore', 'shareIntakeTokensFile'], kind: 'string' },
  VAULTDR_METRICS_LISTEN: { path: ['metrics', 'listen'], kind: 'string' },
  VAULTDR_BACKUP_RECIPIENTS_FILE: { path: ['backup', 'recipientsFile'], kind: 'string' },
  VAULTDR_BACKUP_VALIDATION_KEY_FILE: { path: ['backup', 'validationKeyFile'], kind: 'string' },
  VAULTDR_BACKUP_MAX_UPLOAD_BPS: { path: ['backup', 'maxUploadBytesPerSecond'], kind: 'number' },
  VAULTDR_S3_ADMIN_CREDENTIALS_FILE: { path: ['s3', 'adminCredentialsFile'], kind: 'string' },
  VAULTDR_S3_FORCE_PATH_STYLE: { path: ['s3', 'forcePathStyle'], kind: 'boolean' },
  VAULTDR_BACKUP_BUCKET_REQUIREMENTS: { path: ['backup', 'bucketRequirements'], kind: 'list' },
  VAULTDR_BACKUP_OBJECT_LOCK_DAYS: { path: ['backup', 'objectLockDays'], kind: 'number' },
  VAULTDR_BACKUP_OBJECT_LOCK_MODE: { path: ['backup', 'objectLockMode'], kind: 'string' },
  VAULTDR_BACKUP_RETENTION_DAILY: { path: ['backup', 'retention', 'daily'], kind: 'number' },
  VAULTDR_BACKUP_RETENTION_MONTHLY: { path: ['backup', 'retention', 'monthly'], kind: 'number' },
  VAULTDR_BACKUP_RETENTION_MIN_DAILY: { path: ['backup', 'retention', 'minDaily'], kind: 'number' },
  VAULTDR_BACKUP_RETENTION_MIN_MONTHLY: { path: ['backup', 'retention', 'minMonthly'], kind: 'number' },
  VAULTDR_BACKUP_KV_MOUNT: { path: ['backup', 'kvMount'], kind: 'string' },
  VAULTDR_BACKUP_CANARY_PATH: { path: ['backup', 'canaryPath'], kind: 'string' },
  VAULTDR_BACKUP_CHUNK_SIZE: { path: ['backup', 'chunkSize'], kind: 'number' },
  VAULTDR_BACKUP_PART_SIZE: { path: ['backup', 'partSize'], kind: 'number' },
  VAULTDR_BACKUP_UPLOAD_QUEUE_SIZE: { path: ['backup', 'uploadQueueSize'], kind: 'number' },
  VAULTDR_RESTORE_BAO_BINARY: { path: ['restore', 'baoBinary'], kind: 'string' },
  VAULTDR_RESTORE_STAGING_DIR: { path: ['restore', 'stagingDir'], kind: 'string' },
  VAULTDR_HA_HARNESS_DIR: { path: ['ha', 'harnessDir'], kind: 'string' },
  VAULTDR_RESTORE_UNSEAL_SHARES_FILE: { path: ['restore', 'unsealSharesFile'], kind: 'string' },
  VAULTDR_RESTORE_VALIDATOR_ROLE_ID_FILE: { path: ['restore', 'validatorRoleIdFile'], kind: 'string' },
  VAULTDR_RESTORE_VALIDATOR_SECRET_ID_FILE: { path: ['restore', 'validatorSecretIdFile'], kind: 'string' },
  VAULTDR_RESTORE_CHECK_PATHS: { path: ['restore', 'checkPaths'], kind: 'list' },
  VAULTDR_RESTORE_PRODUCTION_ADDRESS: { path: ['restore', 'productionAddress'], kind: 'string' },
  VAULTDR_RESTORE_PRODUCTION_TOKEN_FILE: { path: ['restore', 'productionTokenFile'], kind: 'string' },
  VAULTDR_RESTORE_RTO_TARGET_SECONDS: { path: ['restore', 'rtoTargetSeconds'], kind: 'number' },
  VAULTDR_RESTORE_RPO_TARGET_SECONDS: { path: ['restore', 'rpoTargetSeconds'], kind: 'number' },
  VAULTDR_ALERTS_DEDUP_WINDOW_MINUTES: { path: ['alerts', 'dedupWindowMinutes'], kind: 'number' },
  VAULTDR_ALERTS_CHANNEL_SECRETS_PATH: { path: ['alerts', 'channelSecretsPath'], kind: 'string' },
  VAULTDR_CODEC_CORS_ORIGINS: { path: ['codec', 'corsOrigins'], kind: 'list' },
  VAULTDR_VAULT_APPROLE_MOUNT: { path: ['vault', 'approleMount'], kind: 'string' },
  VAULTDR_VAULT_REQUEST_TIMEOUT_MS: { path: ['vault', 'requestTimeoutMs'], kind: 'number' },
  VAULTDR_ROTATION_TOKEN_FILE: { path: ['rotation', 'tokenFile'], kind: 'string' },
  VAULTDR_ROTATION_POSTGRES_SUPERUSER_URL_FILE: { path: ['rotation', 'postgresSuperuserUrlFile'], kind: 'string' },
  VAULTDR_ROTATION_HOST: { path: ['rotation', 'host'], kind: 'string' },
  VAULTDR_ROTATION_SSH_KEY_FILE: { path: ['rotation', 'sshKeyFile'], kind: 'string' },
  VAULTDR_MIGRATION_ROLE_ID_FILE: { path: ['migration', 'roleIdFile'], kind: 'string' },
  VAULTDR_MIGRATION_SECRET_ID_FILE: { path: ['migration', 'secretIdFile'], kind: 'string' },
  VAULTDR_ROTATION_UNSEAL_ADDRESS: { path: ['rotation', 'unsealAddress'], kind: 'string' },
  VAULTDR_ROTATION_UNSEAL_TOKEN_FILE: { path: ['rotation', 'unsealTokenFile'], kind: 'string' },
  VAULTDR_ROTATION_CUSTODIANS_FILE: { path: ['rotation', 'custodiansFile'], kind: 'string' },
  VAULTDR_MIGRATION_VAULT_ADDR: { path: ['migration', 'vaultAddress'], kind: 'string' },
  VAULTDR_MIGRATION_SSH_KEY_FILE: { path: ['migration', 'sshKeyFile'], kind: 'string' },
  VAULTDR_WORKER_SHUTDOWN_GRACE_MS: { path: ['worker', 'shutdownGraceMs'], kind: 'number' },
};

export const DEFAULT_STACK_CONFIG = path.join('.stack', 'vaultdr.json');

function envValue(name: string, spec: EnvSpec, raw: string): unknown {
  switch (spec.kind) {
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`config: ${name}: expected a number, got "${raw}"`);
      return n;
    }
    case 'boolean':
      if (!['true', 'false'].includes(raw)) throw new ConfigError(`config: ${name}: expected true or false, got "${raw}"`);
      return raw === 'true';
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, p: string[], value: unknown): void {
  let node = target;
  for (const key of p.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[p[p.length - 1]!] = value;
}

export interface LoadOptions {
  /** Explicit file (e.g. --config); wins over VAULTDR_CONFIG. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Resolves which config file applies, or undefined when none does. */
export function configFilePath(opts: LoadOptions = {}): string | undefined {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.file) return path.resolve(cwd, opts.file);
  if (env.VAULTDR_CONFIG) return path.resolve(cwd, env.VAULTDR_CONFIG);
  const local = path.resolve(cwd, DEFAULT_STACK_CONFIG);
  return fs.existsSync(local) ? local : undefined;
}

/** Loads and validates the configuration; throws ConfigError naming the field or variable. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = configFilePath(opts);
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`config: cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object at the top level');
      raw = parsed as Record<string, unknown>;
    } catch (err) {
      // jsonProblem: JSON.parse would quote the file's first characters, and a mistake can put a secret there.
      throw new ConfigError(`config: ${file} is ${err instanceof SyntaxError ? jsonProblem(err) : (err as Error).message}`);
    }
    // Relative paths inside the file are relative to the file, so the stack's file works from anywhere.
    resolveFilePaths(raw, path.dirname(file));
  }
  const fromEnv = new Map<string, string>();
  for (const [name, spec] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v === undefined) continue;
    setPath(raw, spec.path, envValue(name, spec, v));
    fromEnv.set(spec.path.join('.'), name);
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const msg = result.error.issues
      .map((i) => {
        const field = i.path.join('.');
        const envName = fromEnv.get(field);
        const missing = i.code === 'invalid_type' && i.received === 'undefined';
        const hint = envName ? ` (from ${envName})` : missing ? ` (set ${envFor(field) ?? field}${file ? '' : ' or a config file'})` : file ? ` (in ${file})` : '';
        return `${field || '(config)'}: ${missing ? 'is required' : i.message}${hint}`;
      })
      .join('; ');
    throw new ConfigError(`config: ${msg}`);
  }
  return result.data;
}

function envFor(field: string): string | undefined {
  return Object.entries(ENV_VARS).find(([, s]) => s.path.join('.') === field)?.[0];
}

const FILE_KEYS = new Set(['tenantsFile', 'templatesDir', 'postgresSuperuserUrlFile', 'unsealTokenFile', 'custodiansFile', 'caFile', 'certFile', 'keyFile', 'apiKeyFile', 'productionTokenFile', 'unsealSharesFile', 'validatorRoleIdFile', 'validatorSecretIdFile', 'shareIntakeTokensFile', 'stagingDir', 'roleIdFile', 'secretIdFile', 'tokenFile', 'credentialsFile', 'adminCredentialsFile', 'keysFile', 'tokensFile', 'recipientsFile', 'validationKeyFile', 'harnessDir', 'sshKeyFile', 'relayCaFile']);
function resolveFilePaths(node: Record<string, unknown>, base: string): void {
  for (const [k, v] of Object.entries(node)) {
    if (typeof v === 'string' && FILE_KEYS.has(k)) node[k] = path.resolve(base, v);
    else if (typeof v === 'object' && v !== null && !Array.isArray(v)) resolveFilePaths(v as Record<string, unknown>, base);
  }
}

/**
 * Reads a one-value secret file (trimmed) at the point of use, inside an activity. A missing,
 * unreadable or empty file is a configuration fault that a retry cannot mend, so it is a
 * non-retryable `ConfigInvalid` naming the setting and the path; never the content.
 */
export function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw failure(ErrorType.ConfigInvalid, `config: ${what} file ${file} is ${readProblem(err)}`);
  }
  if (!text) throw failure(ErrorType.ConfigInvalid, `config: ${what} file ${file} is empty`);
  return text;
}
