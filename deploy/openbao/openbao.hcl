# OpenBao server settings shared by every deployment (the local stack and docker-compose).
# The deployment adds its own listener/storage file (deploy/openbao/compose.hcl, or the one the
# local stack writes under .stack/openbao/); OpenBao merges every -config file it is given.
ui            = true
disable_mlock = true

# Metrics for Prometheus at /v1/sys/metrics?format=prometheus.
telemetry {
  prometheus_retention_time = "24h"
  disable_hostname          = true
}

default_lease_ttl = "768h"
max_lease_ttl     = "8760h"
