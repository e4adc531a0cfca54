# vaultdr-custodian: what an unseal-key custodian's own token may do during rotateUnsealKeys
# (`vaultdr keys rotate-submit`, `vaultdr keys rotate-verify`): read the ceremony's state and submit
# shares. The root-key rotation endpoints are authenticated since OpenBao 2.4 (the unauthenticated
# sys/rekey/* are off by default since 2.5).
path "sys/rotate/root/init" {
  capabilities = ["read"]
}
path "sys/rotate/root/update" {
  capabilities = ["update", "sudo"]
}
path "sys/rotate/root/verify" {
  capabilities = ["read", "update", "sudo"]
}
