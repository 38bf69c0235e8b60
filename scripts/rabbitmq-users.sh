#!/usr/bin/env bash
# The broker is a trust boundary: one vhost, and one RabbitMQ user per service with only
# the permissions that service needs (see "The broker is a trust boundary" in README.md).
#
#   scripts/rabbitmq-users.sh create VHOST PREFIX API_USER API_PASS AGENT_USER AGENT_PASS [ADMIN]
#   scripts/rabbitmq-users.sh delete VHOST API_USER AGENT_USER
#
# create: adds the vhost and both users (or sets the password of a user that exists) and
# sets their permissions on the vhost for the queue prefix PREFIX (LBAAS_QUEUE_PREFIX);
# ADMIN, an existing user, gets every permission on the vhost (to inspect dead letters).
# delete: removes the vhost (with every queue and exchange in it) and both users.
# Both are idempotent. They run rabbitmqctl against the local node (root, or the
# rabbitmq user); RABBITMQCTL overrides the command, e.g. "rabbitmqctl -n NODE".
# Passwords reach rabbitmqctl on its standard input and are never printed.
set -euo pipefail

export PATH="${PATH}:/usr/sbin:/sbin"
read -r -a CTL <<<"${RABBITMQCTL:-rabbitmqctl}"

readonly NAME_PATTERN='^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'

usage() {
    sed -n '5,6s/^#   //p' "$0" >&2
    exit 2
}
err() { printf 'rabbitmq-users: %s\n' "$*" >&2; }
ctl() { "${CTL[@]}" --quiet "$@"; }

check_name() {
    if [[ ! "$2" =~ $NAME_PATTERN ]]; then
        err "$1 '$2' must match ${NAME_PATTERN}"
        exit 2
    fi
}

# The regular expression's form of a name: its dots escaped (the only other characters
# allowed, letters, digits, '_' and '-', stand for themselves).
regex_of() { printf '%s' "${1//./\\.}"; }

# json TEXT: TEXT as a JSON string (callers refuse control characters).
json() {
    local text="${1//\\/\\\\}"
    printf '"%s"' "${text//\"/\\\"}"
}

# permission USER VHOST CONFIGURE WRITE READ: one entry of a definitions file.
permission() {
    printf '{"user": %s, "vhost": %s, "configure": %s, "write": %s, "read": %s}' \
        "$(json "$1")" "$(json "$2")" "$(json "$3")" "$(json "$4")" "$(json "$5")"
}

create() {
    (($# == 6 || $# == 7)) || usage
    local vhost="$1" prefix="$2" api_user="$3" api_pass="$4" agent_user="$5" agent_pass="$6"
    local admin="${7:-}"
    check_name vhost "$vhost"
    check_name prefix "$prefix"
    check_name "API user" "$api_user"
    check_name "agent user" "$agent_user"
    [[ -z "$admin" ]] || check_name "admin user" "$admin"
    if [[ "$api_user" == "$agent_user" || "$api_user" == "$admin" || "$agent_user" == "$admin" ]]; then
        err "the API, agent and admin users must be three different users"
        exit 2
    fi
    if [[ -z "$api_pass" || -z "$agent_pass" || "$api_pass$agent_pass" == *[[:cntrl:]]* ]]; then
        err "passwords must be non-empty, without control characters"
        exit 2
    fi
    local p
    p="$(regex_of "$prefix")"
    # The topology is declared by the operator (lbaas-manage broker declare, as the admin
    # user), like a database migration; both services only look it up. So the API may
    # publish commands and consume results, status reports and provider announcements, and
    # nothing else.
    local api_write="^${p}\\.commands\$"
    local api_read="^${p}\\.(results|status|providers)\$"
    # The agent only looks the topology up (passive declarations need no permission),
    # consumes the command queues and publishes results, status reports and announcements.
    local agent_write="^${p}\\.(results|status|providers)\$"
    local agent_read="^${p}\\.commands\\.[0-9]+\$"

    local permissions
    permissions="$(permission "$api_user" "$vhost" '^$' "$api_write" "$api_read")"
    permissions+=", $(permission "$agent_user" "$vhost" '^$' "$agent_write" "$agent_read")"
    if [[ -n "$admin" ]]; then
        permissions+=", $(permission "$admin" "$vhost" '.*' '.*' '.*')"
    fi
    # One import creates or updates all of it (one rabbitmqctl run instead of five).
    printf '{"vhosts": [{"name": %s}], "users": [%s, %s], "permissions": [%s]}\n' \
        "$(json "$vhost")" \
        "{\"name\": $(json "$api_user"), \"password\": $(json "$api_pass"), \"tags\": []}" \
        "{\"name\": $(json "$agent_user"), \"password\": $(json "$agent_pass"), \"tags\": []}" \
        "$permissions" |
        ctl import_definitions >/dev/null
    printf 'rabbitmq-users: vhost %s: %s (API), %s (agent) for prefix %s\n' \
        "$vhost" "$api_user" "$agent_user" "$prefix"
}

# forget vhost|user NAME: delete it; one that does not exist is fine.
forget() {
    local output
    if output="$(ctl "delete_$1" "$2" 2>&1)"; then
        return 0
    fi
    if [[ "$output" == *"does not exist"* ]]; then
        return 0
    fi
    printf '%s\n' "$output" >&2
    return 1
}

delete() {
    (($# == 3)) || usage
    check_name vhost "$1"
    local pids=() pid status=0
    forget vhost "$1" &
    pids+=($!)
    forget user "$2" &
    pids+=($!)
    forget user "$3" &
    pids+=($!)
    for pid in "${pids[@]}"; do
        wait "$pid" || status=1
    done
    if ((status != 0)); then
        err "could not delete everything (see above)"
        exit 1
    fi
    printf 'rabbitmq-users: deleted vhost %s, users %s and %s\n' "$1" "$2" "$3"
}

(($# >= 1)) || usage
command="$1"
shift
case "$command" in
create) create "$@" ;;
delete) delete "$@" ;;
*) usage ;;
esac
