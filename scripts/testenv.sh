# shellcheck shell=bash
#
# testenv.sh prepares this machine for the tests of byoda-go. Source it from
# the test command, so that what it exports reaches the tests:
#
#   source scripts/testenv.sh
#   go test ./...
#
# It
#  1. installs Debian's postgresql package when no PostgreSQL server is
#     installed (as root; anyone else is told what to install);
#  2. unless BYODA_TEST_POSTGRES_DSN is set already, starts a throwaway
#     PostgreSQL cluster on 127.0.0.1 and a free port, with trust
#     authentication, and exports BYODA_TEST_POSTGRES_DSN for it.
#
# byoda_testenv_cleanup stops that cluster and removes its files. It becomes
# the EXIT trap when the shell has none; a shell with its own EXIT trap must
# call it from there.
#
# Sourcing never ends the calling shell, whatever its set -e/-u/-o pipefail:
# trouble is reported on stderr, and the PostgreSQL tests then skip, or fail
# when CI=true.

if [ "${BASH_SOURCE[0]:-}" = "$0" ]; then
	echo "testenv.sh: source this file instead of running it" >&2
	exit 2
fi

byoda_testenv_log() {
	echo "testenv: $*" >&2
}

# byoda_testenv_bindir prints the bin directory of the newest installed
# PostgreSQL server, or fails when there is none.
byoda_testenv_bindir() {
	local initdb
	initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
	if [ ! -x "$initdb" ]; then
		return 1
	fi
	dirname "$initdb"
}

# byoda_testenv_install installs the PostgreSQL server when it is missing.
byoda_testenv_install() {
	if byoda_testenv_bindir >/dev/null; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		byoda_testenv_log "no PostgreSQL server (/usr/lib/postgresql/*/bin/initdb);" \
			"install the Debian package postgresql to run the PostgreSQL tests"
		return 1
	fi

	byoda_testenv_log "installing the PostgreSQL server"
	if ! apt-get update >&2 ||
		! DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; then
		byoda_testenv_log "installing postgresql failed"
		return 1
	fi
	byoda_testenv_bindir >/dev/null
}

# byoda_testenv_as_owner runs a command as the owner of the cluster: the
# postgres user when we are root, since the server refuses to run as root.
byoda_testenv_as_owner() {
	if [ "$(id -u)" != 0 ]; then
		"$@"
	elif command -v runuser >/dev/null; then
		runuser -u postgres -- "$@"
	else
		su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
	fi
}

# byoda_testenv_port_free reports whether nothing listens on 127.0.0.1:$1.
byoda_testenv_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# byoda_testenv_start creates and starts the throwaway cluster and exports
# BYODA_TEST_POSTGRES_DSN.
byoda_testenv_start() {
	local bin dir port try url started=""
	if ! bin=$(byoda_testenv_bindir); then
		return 1
	fi
	if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
		byoda_testenv_log "no postgres user to run the server as"
		return 1
	fi

	# Under /tmp rather than $TMPDIR: the postgres user must reach it, and the
	# socket path must stay short.
	if ! dir=$(mktemp -d /tmp/byoda-pg.XXXXXX); then
		return 1
	fi
	BYODA_TESTENV_PGDIR=$dir
	if [ "$(id -u)" = 0 ] && ! chown postgres: "$dir"; then
		return 1
	fi

	# The cluster's data is thrown away, so it skips the syncs to disk.
	if ! (cd "$dir" && byoda_testenv_as_owner "$bin/initdb" -D "$dir/data" -U postgres \
		--auth=trust -E UTF8 --locale=C --no-sync) >"$dir/initdb.log" 2>&1; then
		byoda_testenv_log "initdb failed:"
		tail -n 20 "$dir/initdb.log" >&2
		return 1
	fi

	# Ports below 32768 stay clear of the kernel's usual ephemeral range, where
	# a client socket can hold a port that nothing listens on. Another process
	# may still take the port between the check and the start, so a failed
	# start tries another one.
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 12000))
		if ! byoda_testenv_port_free "$port"; then
			continue
		fi
		if (cd "$dir" && byoda_testenv_as_owner "$bin/pg_ctl" -D "$dir/data" \
			-l "$dir/server.log" -w -t 60 -s \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start) >&2; then
			started=1
			break
		fi
		byoda_testenv_log "start on port $port failed (try $try)"
	done
	if [ -z "$started" ]; then
		byoda_testenv_log "could not start PostgreSQL; server log:"
		tail -n 20 "$dir/server.log" >&2
		return 1
	fi

	for try in $(seq 1 60); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
			url="postgres://postgres@127.0.0.1:$port/postgres"
			export BYODA_TEST_POSTGRES_DSN="$url?sslmode=disable"
			BYODA_TESTENV_DSN_OURS=1
			byoda_testenv_log "PostgreSQL ready on 127.0.0.1:$port"
			return 0
		fi
		sleep 0.5
	done
	byoda_testenv_log "PostgreSQL on 127.0.0.1:$port did not answer pg_isready"
	return 1
}

# byoda_testenv_cleanup stops the throwaway cluster, removes its files and
# unsets the DSN that pointed at it. Calling it again does nothing.
byoda_testenv_cleanup() {
	local bin dir=${BYODA_TESTENV_PGDIR:-}
	case $dir in
	/tmp/byoda-pg.*) ;;
	*) return 0 ;;
	esac

	if [ -f "$dir/data/postmaster.pid" ] && bin=$(byoda_testenv_bindir); then
		(cd "$dir" && byoda_testenv_as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -s stop) >&2 ||
			byoda_testenv_log "stopping PostgreSQL failed"
	fi
	rm -rf "$dir"

	if [ "${BYODA_TESTENV_DSN_OURS:-}" = 1 ]; then
		unset BYODA_TEST_POSTGRES_DSN
	fi
	unset BYODA_TESTENV_PGDIR BYODA_TESTENV_DSN_OURS
}

byoda_testenv_main() {
	byoda_testenv_install
	if [ -n "${BYODA_TEST_POSTGRES_DSN:-}" ]; then
		byoda_testenv_log "using BYODA_TEST_POSTGRES_DSN from the environment"
		return 0
	fi

	if ! byoda_testenv_start; then
		byoda_testenv_cleanup
		return 1
	fi
	if [ -z "$(trap -p EXIT)" ]; then
		trap byoda_testenv_cleanup EXIT
	fi
}

# Called in an || list, so that a caller's set -e cannot end the shell here.
byoda_testenv_main || true
