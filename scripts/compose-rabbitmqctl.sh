#!/usr/bin/env bash
# The part of rabbitmqctl that scripts/rabbitmq-users.sh uses, through RabbitMQ's
# management HTTP API instead of the Erlang distribution: a compose stack's set-up
# container reaches the broker over the network, without its Erlang cookie.
#
#   RABBITMQCTL=scripts/compose-rabbitmqctl.sh scripts/rabbitmq-users.sh create ...
#
#   [--quiet] import_definitions   the definitions JSON on standard input
#   [--quiet] delete_vhost NAME    fails saying "does not exist" when there is none
#   [--quiet] delete_user NAME     likewise
#
# LBAAS_RABBITMQ_MANAGEMENT_URL (http://rabbitmq:15672), LBAAS_RABBITMQ_ADMIN_USER and
# LBAAS_RABBITMQ_ADMIN_PASSWORD: an administrator of the broker. Nothing is printed of
# what goes in (passwords), only the broker's answer to a failure.
set -euo pipefail

if [[ "${1:-}" == "--quiet" ]]; then
    shift
fi
# The program as an argument: standard input carries the definitions.
program="$(
    cat <<'PYTHON'
import base64
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

base = os.environ.get("LBAAS_RABBITMQ_MANAGEMENT_URL", "http://rabbitmq:15672").rstrip("/")
user = os.environ["LBAAS_RABBITMQ_ADMIN_USER"]
password = os.environ["LBAAS_RABBITMQ_ADMIN_PASSWORD"]
credentials = base64.b64encode(f"{user}:{password}".encode()).decode()


def call(method, path, body=None):
    request = urllib.request.Request(
        base + path,
        data=body,
        method=method,
        headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


action, *names = sys.argv[1:] or [""]
if action == "import_definitions" and not names:
    status, text = call("POST", "/api/definitions", sys.stdin.buffer.read())
elif action in ("delete_vhost", "delete_user") and len(names) == 1:
    kind = "vhosts" if action == "delete_vhost" else "users"
    status, text = call("DELETE", f"/api/{kind}/{urllib.parse.quote(names[0], safe='')}")
    if status == 404:
        sys.exit(f"{kind[:-1]} {names[0]} does not exist")
else:
    sys.exit(f"compose-rabbitmqctl: unsupported: {' '.join(sys.argv[1:])}")
if status >= 300:
    sys.exit(f"compose-rabbitmqctl: {action}: HTTP {status}: {text[:500]}")
PYTHON
)"
exec python3 -c "$program" "$@"
