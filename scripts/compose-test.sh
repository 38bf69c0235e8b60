#!/usr/bin/env bash
# The compose test (make test-compose): the stack of docker-compose.yml, built and started
# for real, then driven through its API by tests/compose/check_compose.py.
#
#   1. sets up what the machine lacks (scripts/compose-engine.sh setup: engine, compose
#      plugin, local base image) and starts dockerd unless an engine answers;
#   2. builds the images (docker-compose.yml + deploy/compose.host.yml +
#      deploy/compose.test.yml: host networking, local images) and starts the stack with
#      `up --wait`, as a compose project of its own, on free ports, with fresh secrets and a
#      VIP range of 127.0.0.0/8 of its own;
#   3. runs the check: a load balancer through the API, real traffic through HAProxy in the
#      device container, `docker compose restart api`, nothing lost, a new change applied;
#   4. in every case: `docker compose down -v`, and stops dockerd if step 1 started it.
#
# Each step has a deadline (seconds): LBAAS_COMPOSE_SETUP_TIMEOUT (900, the first setup
# installs packages), _BUILD_TIMEOUT (600), _UP_TIMEOUT (240), _CHECK_TIMEOUT (300).
# EXTRA_CA_FILE: a CA bundle for pip inside the builds (default: the system's bundle, for a
# TLS-intercepting proxy; set it empty for none). LBAAS_COMPOSE_KEEP=1 leaves the stack up
# (and the engine running) for a look; `docker compose -p NAME down -v` removes it then.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

readonly SETUP_TIMEOUT="${LBAAS_COMPOSE_SETUP_TIMEOUT:-900}"
readonly BUILD_TIMEOUT="${LBAAS_COMPOSE_BUILD_TIMEOUT:-600}"
readonly UP_TIMEOUT="${LBAAS_COMPOSE_UP_TIMEOUT:-240}"
readonly CHECK_TIMEOUT="${LBAAS_COMPOSE_CHECK_TIMEOUT:-300}"
readonly DOWN_TIMEOUT=120
BIN="${LBAAS_VENV_BIN:-$repo/.venv/bin}"

log() { printf 'compose-test: %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
timings=()
# timed NAME COMMAND...: run it, keep how long it took.
timed() {
    local name="$1" started
    shift
    started="$(now)"
    "$@"
    timings+=("$name $(since "$started") s")
}

if [[ ! -x "$BIN/pytest" ]]; then
    log "$BIN/pytest is missing: run 'make install' first (or set LBAAS_VENV_BIN)"
    exit 2
fi

engine_was_up=0
if timeout 10 docker info >/dev/null 2>&1; then
    engine_was_up=1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/lbaas-compose-test.XXXXXX")"
project="lbaas-test-$$"
compose=(docker compose --project-name "$project" --env-file "$work/env"
    -f "$repo/docker-compose.yml" -f "$repo/deploy/compose.host.yml"
    -f "$repo/deploy/compose.test.yml")
stack_started=0

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if ((stack_started)); then
        if ((status != 0)); then
            log "failed: the end of every service's log"
            timeout 60 "${compose[@]}" logs --no-color --tail 60 2>&1 | tail -n 300 || true
        fi
        if [[ "${LBAAS_COMPOSE_KEEP:-0}" == "1" ]]; then
            log "left up: ${compose[*]} down -v"
        else
            local started
            started="$(now)"
            timeout "$DOWN_TIMEOUT" "${compose[@]}" down -v --remove-orphans --timeout 10 \
                >/dev/null 2>&1 || log "docker compose down failed"
            timings+=("down-v $(since "$started") s")
            # Images of earlier builds that this one replaced (the layers stay cached).
            timeout 60 docker image prune --force --filter label=io.lbaas.image >/dev/null 2>&1 || true
        fi
    fi
    if ((engine_was_up == 0)) && [[ "${LBAAS_COMPOSE_KEEP:-0}" != "1" ]]; then
        scripts/compose-engine.sh stop || true
    fi
    rm -rf "$work"
    if ((${#timings[@]})); then
        log "timings: $(printf '%s; ' "${timings[@]}")"
    fi
    if ((status == 0)); then
        log "passed"
    else
        log "FAILED (exit $status)"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

timed setup timeout "$SETUP_TIMEOUT" scripts/compose-engine.sh setup

# Fresh secrets, free ports, a VIP range of its own (never make run's 127.10.0.0/24).
scripts/compose-env.sh "$work/env" 2>/dev/null
read -r -a ports < <(
    python3 - <<'PYTHON'
import socket
probes = [socket.socket() for _ in range(7)]
for probe in probes:
    probe.bind(("127.0.0.1", 0))
print(" ".join(str(probe.getsockname()[1]) for probe in probes))
for probe in probes:
    probe.close()
PYTHON
)
cat >>"$work/env" <<ENV
LBAAS_IMAGE_TAG=test
LBAAS_BASE_IMAGE=${LBAAS_BASE_IMAGE:-local/bookworm}
LBAAS_VIP_CIDR=127.$((RANDOM % 70 + 30)).$((RANDOM % 256)).0/24
LBAAS_STATUS_INTERVAL=2
HOSTNET_POSTGRES_PORT=${ports[0]}
HOSTNET_AMQP_PORT=${ports[1]}
HOSTNET_RABBITMQ_UI_PORT=${ports[2]}
HOSTNET_RABBITMQ_DIST_PORT=${ports[3]}
HOSTNET_EPMD_PORT=${ports[4]}
HOSTNET_API_PORT=${ports[5]}
HOSTNET_DEVICE_PORT=${ports[6]}
ENV
# The same values for compose's interpolation (the environment wins over --env-file) and
# for the check.
set -a
# shellcheck disable=SC1091
source "$work/env"
set +a
export EXTRA_CA_FILE="${EXTRA_CA_FILE-/etc/ssl/certs/ca-certificates.crt}"
if [[ -z "$EXTRA_CA_FILE" || ! -r "$EXTRA_CA_FILE" ]]; then
    EXTRA_CA_FILE=/dev/null
fi

log "project $project: API on 127.0.0.1:$HOSTNET_API_PORT, VIPs from $LBAAS_VIP_CIDR"
build() {
    if ! timeout "$BUILD_TIMEOUT" "${compose[@]}" build >"$work/build.log" 2>&1; then
        log "the build failed; the end of its output:"
        tail -n 40 "$work/build.log"
        return 1
    fi
}
timed build build
stack_started=1
timed up-wait timeout "$UP_TIMEOUT" "${compose[@]}" up --detach --wait --no-build \
    --pull never --wait-timeout "$((UP_TIMEOUT - 10))" --quiet-pull
timeout 30 "${compose[@]}" ps --format 'table {{.Service}}\t{{.Status}}'

printf -v compose_command '%q ' "${compose[@]}"
LBAAS_COMPOSE_API="http://127.0.0.1:$HOSTNET_API_PORT" \
    LBAAS_COMPOSE_ADMIN_TOKEN="$LBAAS_BOOTSTRAP_ADMIN_TOKEN" \
    LBAAS_COMPOSE_COMMAND="$compose_command" \
    timed check timeout "$CHECK_TIMEOUT" "$BIN/pytest" -q -s -p no:cacheprovider \
    tests/compose/check_compose.py
