#!/bin/sh
# The official image's first start: initdb as POSTGRES_USER with
# POSTGRES_PASSWORD, connections from every address with
# POSTGRES_HOST_AUTH_METHOD (scram-sha-256), and POSTGRES_DB made.
set -eu
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	user=${POSTGRES_USER:-postgres}
	method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
		echo "error: POSTGRES_PASSWORD is not set: set it, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
		exit 1
	fi
	password_file=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$password_file"
	# shellcheck disable=SC2086 # the arguments are a list, as in the official image
	initdb --username="$user" --pwfile="$password_file" --auth-local=trust \
		--auth-host="$method" ${POSTGRES_INITDB_ARGS:-}
	rm -f "$password_file"
	echo "host all all all $method" >>"$PGDATA/pg_hba.conf"
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
	database=${POSTGRES_DB:-$user}
	if [ "$database" != postgres ]; then
		echo "CREATE DATABASE \"$database\";" | postgres --single -D "$PGDATA" postgres >/dev/null
	fi
fi
exec "$@"
