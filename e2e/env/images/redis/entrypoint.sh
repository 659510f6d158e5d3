#!/bin/sh
# As the official image does: a redis-server started without a configuration
# file serves clients from other containers (protected mode off).
set -eu
if [ "${1:-}" = redis-server ] && { [ $# -eq 1 ] || [ "${2#-}" != "$2" ]; }; then
	shift
	set -- redis-server --protected-mode no "$@"
fi
exec "$@"
