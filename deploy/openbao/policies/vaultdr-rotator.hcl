# vaultdr-rotator: the token the restore role uses for emergency rotation (rotateCredential).
# Every path is used by an activity in activities/emergency/rotation.ts, named in the comment.

# approle-secret-id: read the role id, issue the new secret-id (custom, so it is stored in KV first),
# list and look up accessors, destroy every other secret-id by accessor.
path "auth/approle/role/+/role-id" {
  capabilities = ["read"]
}
path "auth/approle/role/+/custom-secret-id" {
  capabilities = ["create", "update"]
}
path "auth/approle/role/+/secret-id" {
  capabilities = ["list"]
}
path "auth/approle/role/+/secret-id/lookup" {
  capabilities = ["create", "update"]
}
path "auth/approle/role/+/secret-id-accessor/lookup" {
  capabilities = ["create", "update"]
}
path "auth/approle/role/+/secret-id-accessor/destroy" {
  capabilities = ["create", "update"]
}

# token-lease: count the leases under a prefix, revoke them (sudo), look up sampled token accessors.
path "sys/leases/lookup/*" {
  capabilities = ["list", "sudo"]
}
path "sys/leases/revoke-prefix/*" {
  capabilities = ["update", "sudo"]
}
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}

# Rotated credentials are delivered here (KV v2; the previous version is the old credential, read
# only to prove it is refused).
path "secret/data/vault-dr/credentials/*" {
  capabilities = ["create", "update", "read"]
}
path "secret/metadata/vault-dr/credentials/*" {
  capabilities = ["read"]
}
# channel-secret: the alert channels' secrets (a person writes the new one; the rotation reads its versions).
path "secret/data/vault-dr/alerting/*" {
  capabilities = ["read"]
}
path "secret/metadata/vault-dr/alerting/*" {
  capabilities = ["read"]
}

# token-lease: after a revocation, prove the token store still issues working tokens (a 2-minute
# probe token with the default policy, revoked at once).
path "auth/token/create" {
  capabilities = ["create", "update"]
}
