#!/usr/bin/env bash
# ensure.sh prints the path of a Vault binary for development and tests:
#
#   1. $VAULT_BIN, when set;
#   2. the cached build, ${XDG_CACHE_HOME:-$HOME/.cache}/unitycrm-vault/vault-<version>;
#   3. a vault on PATH;
#   4. otherwise it builds the pinned release from the Go module proxy into
#      the cache (about ten minutes on two cores, once) and prints that.
#
# The version is the one scripts/vault/go.mod requires. Progress goes to
# stderr; stdout carries only the path, so callers can write
# VAULT_BIN="$(scripts/vault/ensure.sh)".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf 'ensure.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# The pinned release, read from the module that builds it.
version=$(awk '{
	for (i = 1; i < NF; i++)
		if ($i == "github.com/hashicorp/vault" && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit }
}' "$here/go.mod")
[[ -n $version ]] || die "cannot read the Vault version from $here/go.mod"

if [[ -n ${VAULT_BIN:-} ]]; then
	[[ -x $VAULT_BIN ]] || die "VAULT_BIN=$VAULT_BIN is not an executable file"
	printf '%s\n' "$VAULT_BIN"
	exit 0
fi

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/unitycrm-vault"
cached="$cache_dir/vault-$version"
if [[ -x $cached ]]; then
	printf '%s\n' "$cached"
	exit 0
fi

if on_path=$(command -v vault 2>/dev/null); then
	have=$("$on_path" version 2>/dev/null | awk '{ sub(/,$/, "", $2); print $2; exit }' || true)
	if [[ $have != "$version" ]]; then
		say "using $on_path ($have), not the pinned $version;" \
			"set VAULT_BIN or remove it from PATH to use $version"
	fi
	printf '%s\n' "$on_path"
	exit 0
fi

command -v go >/dev/null || die "no Vault binary found and no go toolchain to build one"
mkdir -p "$cache_dir"

# One build at a time: a second caller waits for the first, then finds the
# binary in the cache.
exec 9>"$cache_dir/.build.lock"
if command -v flock >/dev/null; then
	if ! flock -n 9; then
		say "another build of Vault $version is running; waiting for it"
		flock 9
	fi
else
	say "flock not found: not guarding against a concurrent build"
fi
if [[ -x $cached ]]; then
	printf '%s\n' "$cached"
	exit 0
fi

tmp=$(mktemp "$cache_dir/.vault-$version.XXXXXX")
trap 'rm -f "$tmp"' EXIT

say "building Vault $version from the Go module proxy (about ten minutes the first time)"
start=$SECONDS
(
	cd "$here"
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp" .
) >&2 || die "building Vault $version failed"
chmod 0755 "$tmp"
mv -f "$tmp" "$cached"
trap - EXIT
say "built $cached in $((SECONDS - start))s"

printf '%s\n' "$cached"
