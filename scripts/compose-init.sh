#!/usr/bin/env bash
# The one-shot set-up of a compose stack (the service "init" of docker-compose.yml, in the
# API image), idempotent like every step in it, run before the API, the agent and the
# device start:
#
#   1. the database and its migrations (lbaas-manage db create, db upgrade);
#   2. the broker's vhost and its two users, the API's and the agent's, each allowed only
#      what its part needs (scripts/rabbitmq-users.sh, through the management HTTP API);
#   3. the broker topology, declared as the broker's administrator (lbaas-manage broker
#      declare), like a migration;
#   4. the HAProxy device (lbaas-manage device ensure).
#
# Settings (docker-compose.yml passes them; .env.example documents them):
#   LBAAS_DATABASE_URL, LBAAS_QUEUE_PREFIX, LBAAS_COMMAND_SHARDS, LBAAS_DELIVERY_LIMIT
#   LBAAS_RABBITMQ_HOST, LBAAS_RABBITMQ_PORT, LBAAS_RABBITMQ_VHOST
#   LBAAS_RABBITMQ_MANAGEMENT_URL, LBAAS_RABBITMQ_ADMIN_USER, LBAAS_RABBITMQ_ADMIN_PASSWORD
#   LBAAS_API_AMQP_PASSWORD, LBAAS_AGENT_AMQP_PASSWORD  (users lbaas-api and lbaas-agent)
#   LBAAS_DEVICE_NAME, LBAAS_DEVICE_URL, LBAAS_VIP_CIDR, LBAAS_DEVICE_CAPACITY
#   LBAAS_DEVICE_SECRET_FILE  (the device's secret)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
readonly DEADLINE_S="${LBAAS_INIT_DEADLINE:-120}"
readonly VHOST="${LBAAS_RABBITMQ_VHOST:-lbaas}" PREFIX="${LBAAS_QUEUE_PREFIX:-lbaas}"
deadline=$((SECONDS + DEADLINE_S))

log() { printf 'compose-init: %s\n' "$*"; }

# retry WHAT COMMAND...: run COMMAND until it succeeds, every 2 s, until the deadline.
retry() {
    local what="$1"
    shift
    until "$@"; do
        if ((SECONDS >= deadline)); then
            log "$what: still failing after ${DEADLINE_S}s, giving up"
            return 1
        fi
        log "$what: retrying in 2 s"
        sleep 2
    done
}

require() {
    local name
    for name in "$@"; do
        if [[ -z "${!name:-}" ]]; then
            log "$name is not set (see .env.example)"
            exit 2
        fi
    done
}
require LBAAS_DATABASE_URL LBAAS_RABBITMQ_ADMIN_USER LBAAS_RABBITMQ_ADMIN_PASSWORD \
    LBAAS_API_AMQP_PASSWORD LBAAS_AGENT_AMQP_PASSWORD LBAAS_DEVICE_URL LBAAS_VIP_CIDR \
    LBAAS_DEVICE_SECRET_FILE LBAAS_SECRET_KEYS

log "database"
retry "lbaas-manage db create" lbaas-manage db create
lbaas-manage db upgrade

log "broker users of vhost $VHOST"
RABBITMQCTL="$here/compose-rabbitmqctl.sh" retry "broker users" \
    "$here/rabbitmq-users.sh" create "$VHOST" "$PREFIX" \
    lbaas-api "$LBAAS_API_AMQP_PASSWORD" lbaas-agent "$LBAAS_AGENT_AMQP_PASSWORD" \
    "$LBAAS_RABBITMQ_ADMIN_USER"

log "broker topology"
admin_url="amqp://${LBAAS_RABBITMQ_ADMIN_USER}:${LBAAS_RABBITMQ_ADMIN_PASSWORD}@${LBAAS_RABBITMQ_HOST:-rabbitmq}:${LBAAS_RABBITMQ_PORT:-5672}/${VHOST}"
LBAAS_AMQP_URL="$admin_url" retry "lbaas-manage broker declare" lbaas-manage broker declare

log "device ${LBAAS_DEVICE_NAME:-local-haproxy} at $LBAAS_DEVICE_URL, VIPs from $LBAAS_VIP_CIDR"
lbaas-manage device ensure "${LBAAS_DEVICE_NAME:-local-haproxy}" --driver haproxy \
    --url "$LBAAS_DEVICE_URL" --vip-cidr "$LBAAS_VIP_CIDR" \
    --capacity "${LBAAS_DEVICE_CAPACITY:-100}" --secret-file "$LBAAS_DEVICE_SECRET_FILE"
log "done"
