#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) are reachable, and
# HAProxy is installed, before the project runs or its tests do.
#
# - Already up: prints one line per service and exits 0 (idempotent, touches nothing).
# - Installed but down: starts it (pg_ctlcluster / rabbitmq-server -detached).
# - Not installed: installs it with apt-get when running as root, else prints what to
#   install and exits 1.
# It never stops or restarts a running service.
#
# LBAAS_SKIP_SERVICE_CHECK=1 makes it do nothing.
set -euo pipefail

if [[ "${LBAAS_SKIP_SERVICE_CHECK:-0}" == "1" ]]; then
    exit 0
fi

# rabbitmq-server, rabbitmqctl and friends live in /usr/sbin.
export PATH="${PATH}:/usr/sbin:/sbin"

readonly HOST=127.0.0.1
readonly PG_PORT=5432
readonly AMQP_PORT=5672
readonly PG_DEADLINE_S=30
readonly AMQP_DEADLINE_S=60

APT_UPDATED=0

log() { printf '%s\n' "$*"; }
err() { printf 'ensure-services: %s\n' "$*" >&2; }
# bash's "command -v" also reports a non-executable match: insist on an executable.
have() {
    local path
    path="$(command -v "$1" 2>/dev/null)" && [[ -x "$path" ]]
}
is_root() { [[ "$(id -u)" == "0" ]]; }

# True when something accepts a TCP connection on $HOST:$1.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/${HOST}/$1" 2>/dev/null
}

# wait_until SECONDS COMMAND...: poll COMMAND every 0.5 s until it succeeds or the
# deadline passes.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ "$APT_UPDATED" == "0" ]]; then
        log "ensure-services: apt-get update"
        apt-get update -qq || { err "apt-get update failed"; return 1; }
        APT_UPDATED=1
    fi
    log "ensure-services: apt-get install -y --no-install-recommends $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || {
        err "apt-get install $* failed"
        return 1
    }
}

can_apt_install() { is_root && have apt-get; }

# ---------------------------------------------------------------- PostgreSQL

pg_ready() {
    if have pg_isready; then
        pg_isready -q -h "$HOST" -p "$PG_PORT"
    else
        port_open "$PG_PORT"
    fi
}

# Newest PostgreSQL version that has a "main" cluster, e.g. "15"; empty if none.
pg_main_cluster_version() {
    local conf version best=""
    for conf in /etc/postgresql/*/main/postgresql.conf; do
        [[ -f "$conf" ]] || continue
        version="$(basename "$(dirname "$(dirname "$conf")")")"
        if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$best" "$version" | sort -V | tail -n1)" == "$version" ]]; then
            best="$version"
        fi
    done
    printf '%s' "$best"
}

pg_installed() { have pg_ctlcluster && [[ -n "$(pg_main_cluster_version)" ]]; }

# The project connects as postgres without a password over TCP: make 127.0.0.1 and ::1
# trusted (rules are matched top-down, so these go first). Only used on a cluster this
# script just installed.
pg_configure_trust() {
    local version="$1"
    local hba="/etc/postgresql/${version}/main/pg_hba.conf"
    [[ -f "$hba" ]] || return 0
    if grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        return 0
    fi
    log "ensure-services: trusting 127.0.0.1 and ::1 in $hba"
    local tmp
    tmp="$(mktemp)"
    {
        echo "# Added by lbaas scripts/ensure-services.sh: local TCP connections without password."
        echo "host    all             all             127.0.0.1/32            trust"
        echo "host    all             all             ::1/128                 trust"
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba" # keeps the file's owner and mode
    rm -f "$tmp"
}

pg_start_cluster() {
    local version="$1"
    log "ensure-services: starting PostgreSQL cluster ${version}/main"
    local rc=0
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || rc=$?
    # Exit code 2 means "already running" (e.g. still starting up): the caller waits.
    if [[ "$rc" != 0 && "$rc" != 2 ]]; then
        err "pg_ctlcluster ${version} main start failed (exit ${rc})"
        err "  see /var/log/postgresql/postgresql-${version}-main.log"
        return 1
    fi
}

pg_warn_if_password_needed() {
    have psql || return 0
    if ! PGCONNECT_TIMEOUT=5 psql -w -X -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres \
        -Atc 'select 1' >/dev/null 2>&1; then
        err "warning: PostgreSQL is up but 'psql -h ${HOST} -U postgres' (no password) fails;"
        err "  the project expects trust auth for 127.0.0.1 in pg_hba.conf"
        err "  (a line 'host all all 127.0.0.1/32 trust' before the others), then a reload."
    fi
}

ensure_postgres() {
    if pg_ready; then
        log "postgresql: up on ${HOST}:${PG_PORT}"
        pg_warn_if_password_needed
        return 0
    fi

    local version
    if pg_installed; then
        version="$(pg_main_cluster_version)"
        pg_start_cluster "$version" || return 1
    elif can_apt_install; then
        apt_install postgresql || return 1
        version="$(pg_main_cluster_version)"
        if [[ -z "$version" ]] || ! have pg_ctlcluster; then
            err "postgresql was installed but no cluster 'main' exists under /etc/postgresql"
            err "  create one with: pg_createcluster --start <version> main"
            return 1
        fi
        pg_configure_trust "$version"
        if pg_ready; then
            # The package's postinst may already have started it: apply the new pg_hba.conf.
            pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
        else
            pg_start_cluster "$version" || return 1
        fi
    else
        err "PostgreSQL is not reachable on ${HOST}:${PG_PORT} and not installed."
        err "  install it as root:  apt-get install -y --no-install-recommends postgresql"
        err "  and allow passwordless local TCP logins as 'postgres' in pg_hba.conf:"
        err "    host all all 127.0.0.1/32 trust"
        return 1
    fi

    if ! wait_until "$PG_DEADLINE_S" pg_ready; then
        err "PostgreSQL did not accept connections on ${HOST}:${PG_PORT} within ${PG_DEADLINE_S}s"
        err "  see /var/log/postgresql/postgresql-${version}-main.log"
        return 1
    fi
    log "postgresql: up on ${HOST}:${PG_PORT} (started)"
    pg_warn_if_password_needed
}

# ------------------------------------------------------------------ RabbitMQ

amqp_ready() { port_open "$AMQP_PORT"; }

rabbitmq_start() {
    # Debian's wrapper only lets root (it switches to the rabbitmq user) or rabbitmq start it.
    if ! is_root && [[ "$(id -un)" != "rabbitmq" ]]; then
        err "RabbitMQ is installed but not running; start it as root: rabbitmq-server -detached"
        return 1
    fi
    log "ensure-services: starting RabbitMQ (rabbitmq-server -detached)"
    local out rc=0
    out="$(mktemp)"
    rabbitmq-server -detached >"$out" 2>&1 || rc=$?
    if [[ "$rc" != 0 ]]; then
        sed 's/^/  rabbitmq-server: /' "$out" >&2
        # "already running": the node is up but still booting, the caller waits for it.
        if ! grep -qi 'already running' "$out"; then
            rm -f "$out"
            err "rabbitmq-server -detached failed (exit ${rc}); see /var/log/rabbitmq/"
            return 1
        fi
    fi
    rm -f "$out"
}

ensure_rabbitmq() {
    if amqp_ready; then
        log "rabbitmq: up on ${HOST}:${AMQP_PORT}"
        return 0
    fi

    if have rabbitmq-server; then
        rabbitmq_start || return 1
    elif can_apt_install; then
        apt_install rabbitmq-server || return 1
        # The package's postinst may already have started it.
        if ! amqp_ready; then
            rabbitmq_start || return 1
        fi
    else
        err "RabbitMQ is not reachable on ${HOST}:${AMQP_PORT} and not installed."
        err "  install it as root:  apt-get install -y --no-install-recommends rabbitmq-server"
        err "  then start it:       rabbitmq-server -detached"
        return 1
    fi

    if ! wait_until "$AMQP_DEADLINE_S" amqp_ready; then
        err "RabbitMQ did not open ${HOST}:${AMQP_PORT} within ${AMQP_DEADLINE_S}s"
        err "  see /var/log/rabbitmq/ ; if the node runs with its app stopped: rabbitmqctl start_app"
        return 1
    fi
    log "rabbitmq: up on ${HOST}:${AMQP_PORT} (started)"
}

# ------------------------------------------------------------------- HAProxy

# lbaas-device runs its own HAProxy processes: only the binary is needed, no service.
ensure_haproxy() {
    if have haproxy; then
        log "haproxy: $(haproxy -v 2>/dev/null | head -n 1)"
        return 0
    fi
    if can_apt_install; then
        apt_install haproxy || return 1
        log "haproxy: $(haproxy -v 2>/dev/null | head -n 1) (installed)"
        return 0
    fi
    err "HAProxy is not installed (lbaas-device runs it)."
    err "  install it as root:  apt-get install -y --no-install-recommends haproxy"
    return 1
}

status=0
ensure_postgres || status=1
ensure_rabbitmq || status=1
ensure_haproxy || status=1
exit "$status"
