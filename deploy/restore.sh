#!/usr/bin/env bash
# Restore a coopfed node from a deploy/backup.sh backup: its database (with the
# coop's private keys, in table local_actors) and DATA_DIR/node.json.
#
#   deploy/restore.sh [--data-dir DIR] BACKUP_DIR          the node's embedded cluster
#   deploy/restore.sh --env-file /etc/coopfed/coopfed.env BACKUP_DIR
#   deploy/restore.sh --database-url URL BACKUP_DIR        a PostgreSQL server (or DATABASE_URL)
#   deploy/restore.sh --compose deploy/compose.yaml BACKUP_DIR
#   add --yes to skip the question
#
# Everything in the target database is replaced by the backup, in one
# transaction: if anything fails, the database stays as it was.
#
# Stop the node and every worker first (systemctl stop coopfed 'coopfed-worker@*';
# with --compose the script stops the node and worker services itself). The
# script refuses while other sessions use the database.
#
# With the embedded cluster on a new machine, create the cluster first with the
# coop's settings, as the node's user: coopfed init --data-dir DIR --origin
# ORIGIN --username USERNAME (the fresh identity it makes is replaced here).
#
# Afterwards start the node with the same COOPFED_ORIGIN and COOPFED_USERNAME as
# before (they are in node.json / compose.env of the backup): the keys belong to
# that address, and the node refuses to start under another username.
set -euo pipefail
# shellcheck source=deploy/db-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/db-common.sh"

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit "${1:-0}"
}

BACKUP=""
ASSUME_YES=0
while (($#)); do
	case $1 in
	--data-dir) DATA_DIR=${2:?--data-dir needs a directory}; shift 2 ;;
	--database-url) DB_URL=${2:?--database-url needs a URL}; shift 2 ;;
	--compose) COMPOSE_FILE=${2:?--compose needs the compose file}; shift 2 ;;
	--env-file) ENV_FILE=${2:?--env-file needs a file}; shift 2 ;;
	-y | --yes) ASSUME_YES=1; shift ;;
	-h | --help) usage 0 ;;
	-*) say "unknown option $1"; usage 2 ;;
	*)
		[[ -z $BACKUP ]] || die "one backup directory only"
		BACKUP=$1
		shift
		;;
	esac
done
[[ -n $BACKUP ]] || usage 2
DUMP=$BACKUP/coopfed.dump
[[ -r $DUMP ]] || die "no readable $DUMP: give the directory that backup.sh made"
resolve_target

if ((!ASSUME_YES)); then
	[[ -t 0 ]] || die "this replaces the database of $(describe_target): add --yes to confirm"
	read -r -p "Replace everything in $(describe_target) with $BACKUP? Type yes: " answer
	[[ $answer == yes ]] || die "nothing changed"
fi

case $MODE in
compose)
	docker compose -f "$COMPOSE_FILE" stop node worker
	docker compose -f "$COMPOSE_FILE" up -d --wait db
	;;
embedded) open_embedded stopped ;;
esac

others=$(pg_tool psql -X -q -t -A -v ON_ERROR_STOP=1 -c \
	"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
if [[ ${others//[[:space:]]/} != 0 ]]; then
	die "$others other session(s) use the database: stop the node and its workers first"
fi

say "restoring $BACKUP into $(describe_target)"
# One transaction: the old schema goes, the backup's comes. COMMIT is only sent
# once pg_restore has written all of the SQL; without it psql rolls back.
{
	printf 'SET client_min_messages = warning;\nBEGIN;\n'
	printf 'DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n'
	pg_archive --no-owner --no-privileges --file=- <"$DUMP"
	printf 'COMMIT;\n'
} | pg_tool psql -X -q -v ON_ERROR_STOP=1 >/dev/null

coop=$(pg_tool psql -X -q -t -A -v ON_ERROR_STOP=1 -c \
	"SELECT username FROM local_actors WHERE kind = 'coop'")

if [[ $MODE != compose && -f $BACKUP/node.json ]]; then
	mkdir -p "$DATA_DIR"
	cp "$BACKUP/node.json" "$DATA_DIR/node.json"
	[[ $(id -u) != 0 ]] || chown --reference="$DATA_DIR" "$DATA_DIR/node.json"
fi
origin=""
if [[ -f $BACKUP/node.json ]]; then
	origin=$(sed -n 's/.*"origin": *"\([^"]*\)".*/\1/p' "$BACKUP/node.json")
elif [[ -f $BACKUP/compose.env ]]; then
	origin=$(env_file_value "$BACKUP/compose.env" COOPFED_ORIGIN)
fi
say "restored the coop @${coop:-?}; start the node with COOPFED_USERNAME=${coop:-?}${origin:+ and COOPFED_ORIGIN=$origin}"
case $MODE in
compose) say "then: docker compose -f $COMPOSE_FILE up -d" ;;
*) say "then: systemctl start coopfed (or coopfed run)" ;;
esac
