#!/usr/bin/env bash
# Back up a coopfed node: its database, which holds the coop's private keys,
# and the identity file DATA_DIR/node.json.
#
#   deploy/backup.sh [--data-dir DIR] [OUT_DIR]           the node's embedded cluster
#   deploy/backup.sh --env-file /etc/coopfed/coopfed.env  DATABASE_URL or COOPFED_DATA_DIR from it
#   deploy/backup.sh --database-url URL [OUT_DIR]         a PostgreSQL server (or DATABASE_URL)
#   deploy/backup.sh --compose deploy/compose.yaml [OUT_DIR]
#
# The node may keep running: pg_dump reads one consistent snapshot. With the
# embedded cluster, run it as the node's user (sudo -u coopfed) or as root.
#
# OUT_DIR (default ./coopfed-backup-YYYYmmdd-HHMMSS) is created with mode 0700:
#   coopfed.dump  pg_dump --format=custom of the whole database. The PRIVATE
#                 KEYS of the coop and of the instance actor are in it (table
#                 local_actors), so keep it as secret as the keys: whoever has
#                 it can sign as the coop. Without it, after a lost disk, peers
#                 no longer recognise the coop.
#   node.json     DATA_DIR/node.json (origin, username, host, port), if present.
#   compose.env   the .env next to the compose file (--compose), if present:
#                 the origin and the database password.
#   backup.txt    what was backed up, from where and when.
#
# Restore with deploy/restore.sh. The dump also restores into a different kind
# of database (embedded -> compose -> your own server): owners are not kept.
set -euo pipefail
# shellcheck source=deploy/db-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/db-common.sh"

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit "${1:-0}"
}

OUT_DIR=""
while (($#)); do
	case $1 in
	--data-dir) DATA_DIR=${2:?--data-dir needs a directory}; shift 2 ;;
	--database-url) DB_URL=${2:?--database-url needs a URL}; shift 2 ;;
	--compose) COMPOSE_FILE=${2:?--compose needs the compose file}; shift 2 ;;
	--env-file) ENV_FILE=${2:?--env-file needs a file}; shift 2 ;;
	-h | --help) usage 0 ;;
	-*) say "unknown option $1"; usage 2 ;;
	*)
		[[ -z $OUT_DIR ]] || die "one output directory only"
		OUT_DIR=$1
		shift
		;;
	esac
done
resolve_target
OUT_DIR=${OUT_DIR:-./coopfed-backup-$(date -u +%Y%m%d-%H%M%S)}
[[ ! -e $OUT_DIR ]] || die "$OUT_DIR exists already"

say "backing up $(describe_target) into $OUT_DIR"
[[ $MODE != embedded ]] || open_embedded any
umask 077
mkdir -p "$OUT_DIR"
COMPLETE=0
remove_partial_backup() {
	((COMPLETE)) || rm -rf "$OUT_DIR"
}
EXIT_HOOKS+=(remove_partial_backup)

# pg_dump writes to stdout, so that the same line works inside the db container.
pg_tool pg_dump --format=custom --no-owner --no-privileges >"$OUT_DIR/coopfed.dump.part"
# A dump without the actors' keys is no backup of the coop.
listing=$(pg_archive --list <"$OUT_DIR/coopfed.dump.part")
if ! [[ $listing =~ TABLE\ DATA\ public\ local_actors($|[[:space:]]) ]]; then
	die "the dump of $(describe_target) has no table local_actors: is this a coopfed database?"
fi
mv "$OUT_DIR/coopfed.dump.part" "$OUT_DIR/coopfed.dump"

if [[ $MODE != compose && -f $DATA_DIR/node.json ]]; then
	cp "$DATA_DIR/node.json" "$OUT_DIR/node.json"
fi
env_next_to_compose=$(dirname "${COMPOSE_FILE:-.}")/.env
if [[ $MODE == compose && -f $env_next_to_compose ]]; then
	cp "$env_next_to_compose" "$OUT_DIR/compose.env"
fi
files=(coopfed.dump)
[[ ! -f $OUT_DIR/node.json ]] || files+=(node.json)
[[ ! -f $OUT_DIR/compose.env ]] || files+=(compose.env)
{
	printf 'coopfed backup\n'
	printf 'date: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'from: %s\n' "$(describe_target)"
	printf 'host: %s\n' "$(hostname)"
	printf 'files: %s\n' "${files[*]}"
} >"$OUT_DIR/backup.txt"
COMPLETE=1
say "done: $OUT_DIR ($(du -sh "$OUT_DIR" | cut -f1)); it holds the coop's private keys, keep it safe"
