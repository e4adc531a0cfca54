# vaultdr-restore-validator: what the restore validation may read on a *restored* cluster.
# The role lives in the production cluster and is restored with its data, so a staging restore
# can prove that real credentials still work. List exactly the paths in restore.checkPaths.
path "secret/data/vault-dr/canary" {
  capabilities = ["read"]
}
path "secret/data/app/*" {
  capabilities = ["read"]
}

# KV inventory after a restore (metadata only, no values), compared with the manifest.
path "secret/metadata/*" {
  capabilities = ["read", "list"]
}
# OpenBao's detailed LIST: a page of keys with their metadata per request (the fast path of the
# inventory; without it the inventory falls back to one metadata read per secret).
path "secret/detailed-metadata/*" {
  capabilities = ["list"]
}
