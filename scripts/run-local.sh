#!/usr/bin/env bash
# Start the API, one agent and one HAProxy device (lbaas-device, registered as the device
# "local-haproxy", VIPs from 127.10.0.0/24) against the local PostgreSQL and RabbitMQ;
# Ctrl-C stops the three. Settings come from LBAAS_* variables (see README); defaults suit
# a laptop. The HAProxy instances of load balancers keep running when lbaas-device stops,
# and its next start adopts them.
#
# The broker is a trust boundary: the API and the agent connect as two users of the vhost
# "lbaas" (scripts/rabbitmq-users.sh, which needs rabbitmqctl, i.e. root), with random
# passwords kept in .run/rabbitmq.env. LBAAS_AMQP_URL (one URL for both) or
# LBAAS_BROKER_USERS=0 (guest) skips that. The topology is declared as the admin user
# (guest), like a migration. The bootstrap admin token is LBAAS_BOOTSTRAP_ADMIN_TOKEN, or
# one made on the first run and kept in .run/admin-token; the keys sealing the secrets the
# database holds are LBAAS_SECRET_KEYS, or one made on the first run in .run/secret-keys.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

export LBAAS_DATABASE_URL="${LBAAS_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/lbaas}"
export LBAAS_SIM_STATE_DIR="${LBAAS_SIM_STATE_DIR:-$PWD/.run/sim}"
host="${LBAAS_HOST:-127.0.0.1}"
port="${LBAAS_PORT:-9876}"
mkdir -p .run

readonly AMQP_HOST=127.0.0.1:5672 VHOST=lbaas API_USER=lbaas-api AGENT_USER=lbaas-agent
readonly SECRETS=.run/rabbitmq.env

# A password safe in a URL as it is: hex.
new_password() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# secret NAME: the value of NAME= in $SECRETS.
secret() { sed -n "s/^$1=//p" "$SECRETS"; }

if [[ -n "${LBAAS_AMQP_URL:-}" || "${LBAAS_BROKER_USERS:-1}" == "0" ]]; then
    api_amqp_url="${LBAAS_AMQP_URL:-amqp://guest:guest@${AMQP_HOST}/}"
    agent_amqp_url="$api_amqp_url"
    admin_amqp_url="$api_amqp_url"
else
    export PATH="${PATH}:/usr/sbin:/sbin"
    if ! ctl_output="$(rabbitmqctl --quiet list_vhosts 2>&1)"; then
        echo "run-local: the API and the agent connect to RabbitMQ as their own users, and" >&2
        echo "  creating them needs rabbitmqctl, which only root (or the rabbitmq user) may run." >&2
        echo "  Run 'make run' as root, or set LBAAS_BROKER_USERS=0 to connect both as guest," >&2
        echo "  or LBAAS_AMQP_URL to a URL of yours (used by both). rabbitmqctl said:" >&2
        printf '%s\n' "$ctl_output" | grep -v '^[[:space:]]*$' | tail -n 1 | sed 's/^/    /' >&2
        exit 1
    fi
    if [[ ! -s "$SECRETS" ]]; then
        (
            umask 077
            printf 'LBAAS_API_AMQP_PASSWORD=%s\nLBAAS_AGENT_AMQP_PASSWORD=%s\n' \
                "$(new_password)" "$(new_password)" >"$SECRETS"
        )
    fi
    chmod 600 "$SECRETS"
    api_password="$(secret LBAAS_API_AMQP_PASSWORD)"
    agent_password="$(secret LBAAS_AGENT_AMQP_PASSWORD)"
    if [[ -z "$api_password" || -z "$agent_password" ]]; then
        echo "run-local: $SECRETS lacks a password; delete it to get new ones" >&2
        exit 1
    fi
    scripts/rabbitmq-users.sh create "$VHOST" "${LBAAS_QUEUE_PREFIX:-lbaas}" \
        "$API_USER" "$api_password" "$AGENT_USER" "$agent_password" guest
    api_amqp_url="amqp://${API_USER}:${api_password}@${AMQP_HOST}/${VHOST}"
    agent_amqp_url="amqp://${AGENT_USER}:${agent_password}@${AMQP_HOST}/${VHOST}"
    admin_amqp_url="amqp://guest:guest@${AMQP_HOST}/${VHOST}"
fi

if [[ -z "${LBAAS_BOOTSTRAP_ADMIN_TOKEN:-}" ]]; then
    if [[ ! -s .run/admin-token ]]; then
        (umask 077 && "$BIN/python" -c "import secrets; print(secrets.token_urlsafe(32))" >.run/admin-token)
    fi
    LBAAS_BOOTSTRAP_ADMIN_TOKEN="$(cat .run/admin-token)"
fi
export LBAAS_BOOTSTRAP_ADMIN_TOKEN
if [[ -z "${LBAAS_SECRET_KEYS:-}" ]]; then
    if [[ ! -s .run/secret-keys ]]; then
        (umask 077 && "$BIN/lbaas-manage" secrets new-key >.run/secret-keys)
    fi
    LBAAS_SECRET_KEYS="$(cat .run/secret-keys)"
fi
export LBAAS_SECRET_KEYS
# The servers a laptop balances are on its own loopback.
export LBAAS_ALLOW_LOOPBACK_MEMBERS="${LBAAS_ALLOW_LOOPBACK_MEMBERS:-true}"

"$BIN/lbaas-manage" db create
"$BIN/lbaas-manage" db upgrade
LBAAS_AMQP_URL="$admin_amqp_url" "$BIN/lbaas-manage" broker declare

# The local HAProxy device: its secret, a state directory short enough for HAProxy's socket
# paths (at most 52 characters), and its registration.
device_listen="${LBAAS_DEVICE_LISTEN:-127.0.0.1:19443}"
device_state="${LBAAS_DEVICE_STATE_DIR:-$PWD/.run/device}"
if ((${#device_state} > 52)); then
    device_state="/var/tmp/lbaas-device-$(printf '%s' "$PWD" | cksum | cut -d' ' -f1)"
fi
if [[ ! -s .run/device-secret ]]; then
    (umask 077 && "$BIN/python" -c "import secrets; print(secrets.token_urlsafe(32))" >.run/device-secret)
fi
"$BIN/lbaas-manage" device ensure local-haproxy --driver haproxy \
    --url "http://${device_listen}" --vip-cidr "${LBAAS_LOCAL_VIP_CIDR:-127.10.0.0/24}" \
    --capacity 100 --secret-file .run/device-secret >/dev/null

pids=()
stop() {
    trap - INT TERM EXIT
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
# Ctrl-C (or a TERM) is how one stops it: stop the three and exit 0, not 130 or 143.
trap 'stop; exit 0' INT TERM
trap stop EXIT

LBAAS_AMQP_URL="$api_amqp_url" LBAAS_METRICS_PORT="${LBAAS_METRICS_PORT:-9879}" \
    "$BIN/lbaas-api" --host "$host" --port "$port" &
pids+=($!)
LBAAS_AMQP_URL="$agent_amqp_url" \
    LBAAS_AGENT_METRICS_PORT="${LBAAS_AGENT_METRICS_PORT:-9877}" "$BIN/lbaas-agent" &
pids+=($!)
LBAAS_DEVICE_METRICS_LISTEN="${LBAAS_DEVICE_METRICS_LISTEN:-127.0.0.1:9878}" \
    "$BIN/lbaas-device" --listen "$device_listen" --state-dir "$device_state" \
    --secret-file .run/device-secret &
pids+=($!)

for _ in $(seq 100); do
    if "$BIN/python" -c "import httpx,sys; sys.exit(httpx.get('http://$host:$port/readyz').status_code != 200)" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
echo
echo "lbaas API: http://$host:$port  (agent and HAProxy device local-haproxy running;"
echo "  logs above; Ctrl-C stops them)"
echo "admin token (project admin): $LBAAS_BOOTSTRAP_ADMIN_TOKEN"
echo "  e.g. curl -H \"X-Auth-Token: \$TOKEN\" http://$host:$port/v2/lbaas/loadbalancers"
echo "Prometheus metrics: API http://${LBAAS_METRICS_HOST:-127.0.0.1}:${LBAAS_METRICS_PORT:-9879}/metrics,"
echo "  agent ${LBAAS_AGENT_METRICS_HOST:-127.0.0.1}:${LBAAS_AGENT_METRICS_PORT:-9877},"
echo "  device ${LBAAS_DEVICE_METRICS_LISTEN:-127.0.0.1:9878}"
echo
wait -n "${pids[@]}"
