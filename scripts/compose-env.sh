#!/usr/bin/env bash
# Write .env for docker-compose.yml with fresh random secrets, unless it exists.
#
#   scripts/compose-env.sh [FILE]     # FILE defaults to .env beside docker-compose.yml
#
# Every variable is documented in .env.example; this sets only the secrets (hex: safe in
# URLs as they are) and leaves the rest to their defaults. The file is mode 600.
set -euo pipefail
cd "$(dirname "$0")/.."
file="${1:-.env}"
if [[ -e "$file" ]]; then
    echo "compose-env: $file exists: left as it is" >&2
    exit 0
fi
secret() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
(
    umask 077
    cat >"$file" <<ENV
# Made by scripts/compose-env.sh; every variable is described in .env.example.
LBAAS_BOOTSTRAP_ADMIN_TOKEN=$(secret 32)
LBAAS_SECRET_KEYS=$(head -c32 /dev/urandom | base64 -w0 | tr '+/' '-_')
LBAAS_DEVICE_SECRET=$(secret 24)
LBAAS_POSTGRES_PASSWORD=$(secret 24)
LBAAS_RABBITMQ_ADMIN_PASSWORD=$(secret 24)
LBAAS_API_AMQP_PASSWORD=$(secret 24)
LBAAS_AGENT_AMQP_PASSWORD=$(secret 24)
ENV
)
echo "compose-env: wrote $file (admin token: LBAAS_BOOTSTRAP_ADMIN_TOKEN in it)" >&2
