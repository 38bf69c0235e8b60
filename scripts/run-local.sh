#!/usr/bin/env bash
# Start the API and one agent against the local PostgreSQL and RabbitMQ; Ctrl-C stops both.
# Settings come from LBAAS_* variables (see README); defaults suit a laptop.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

export LBAAS_DATABASE_URL="${LBAAS_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/lbaas}"
export LBAAS_SIM_STATE_DIR="${LBAAS_SIM_STATE_DIR:-$PWD/.run/sim}"
host="${LBAAS_HOST:-127.0.0.1}"
port="${LBAAS_PORT:-9876}"
mkdir -p .run

"$BIN/lbaas-manage" db create
"$BIN/lbaas-manage" db upgrade

pids=()
stop() {
    trap - INT TERM EXIT
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/lbaas-api" --host "$host" --port "$port" &
pids+=($!)
"$BIN/lbaas-agent" &
pids+=($!)

for _ in $(seq 100); do
    if "$BIN/python" -c "import httpx,sys; sys.exit(httpx.get('http://$host:$port/readyz').status_code != 200)" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
echo
echo "lbaas API: http://$host:$port  (agent running; logs above; Ctrl-C stops both)"
echo
wait -n "${pids[@]}"
