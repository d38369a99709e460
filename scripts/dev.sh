#!/usr/bin/env bash
# dev.sh starts the accounts-server emulator and a dev Vault with the plugin,
# then walks the whole flow once, printing each command as an operator would
# type it: register, enable, configure, consent, store the credential, read
# a leased token, call the CRM API with it, revoke the lease, and see the
# same call refused.
#
#   scripts/dev.sh                  (make dev) a person approves in a browser;
#                                   both servers keep running until Ctrl-C
#   scripts/dev.sh --auto-approve   the same without a browser
#   scripts/dev.sh --demo           (make demo) unattended; exits 0 only if
#                                   every step behaved, and stops both servers
#
# Everything listens on 127.0.0.1. The client secret, the grant code, the
# state and the refresh token are never printed; access tokens only masked.
# The trap handlers look unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail

usage() {
	sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

mode=dev
auto_approve=0
while (($#)); do
	case $1 in
	--demo) mode=demo auto_approve=1 ;;
	--auto-approve) auto_approve=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

plugin=vault-plugin-secrets-unitycrm
emulator=unitycrm-accounts-emulator
version=$(<internal/version/VERSION)
mount=unitycrm
cred=demo

if [[ -t 1 ]]; then
	bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' green=$'\e[32m' off=$'\e[0m'
else
	bold='' dim='' red='' green='' off=''
fi

note() { printf '\n%s# %s%s\n' "$dim" "$*" "$off"; }
shown() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; }
fail() {
	printf '\n%s%s failed: %s%s\n' "$red" "$mode" "$*" "$off" >&2
	exit 1
}

# A person has to paste the callback URL somewhere.
if [[ $mode == dev && $auto_approve == 0 && ! -t 0 ]]; then
	fail "no terminal to paste the callback URL into; run" \
		"'make dev DEV_FLAGS=--auto-approve' (scripts/dev.sh --auto-approve) or 'make demo'"
fi
command -v curl >/dev/null || fail "curl is needed for the CRM API calls"

# ---- secrets: random per run, never printed --------------------------------

client_id=1000.UNITYCRMDEVCLIENT
client_secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
secrets=("$client_secret")

# mask shows the start of a token and hides the rest.
mask() { printf '%s…' "${1:0:9}"; }

# scrub hides every known secret, and any code or state, in what it copies
# from stdin to stdout.
scrub() {
	local text s
	text=$(cat)
	for s in "${secrets[@]}"; do
		if [[ -n $s ]]; then
			text=${text//"$s"/$(mask "$s")}
		fi
	done
	printf '%s\n' "$text" | sed -E \
		-e 's/([?&](code|state)=)[^&[:space:]"'"'"']+/\1<redacted>/g' \
		-e 's/^(state[[:space:]]+).*/\1<redacted>/'
}

# ---- processes: started here, stopped here ---------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/unitycrm-dev.XXXXXX")
pids=()
serving=0

stop_servers() {
	local pid i
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}

on_exit() {
	local status=$?
	trap - EXIT INT TERM
	stop_servers
	if ((status != 0)); then
		for log in "$work"/*.log; do
			[[ -s $log ]] || continue
			printf '\n--- last lines of %s ---\n' "$log" >&2
			tail -n 25 "$log" | scrub >&2
		done
		printf '\nlogs kept in %s\n' "$work" >&2
	else
		rm -rf "$work"
	fi
	exit "$status"
}
trap on_exit EXIT
# Ctrl-C (or SIGTERM) is how `make dev` ends once the walk-through is done.
stop_signal() {
	if ((serving)); then
		printf '\nstopping\n'
		exit 0
	fi
	exit "$1"
}
trap 'stop_signal 130' INT
trap 'stop_signal 143' TERM

# free_port prints a loopback port nothing listens on.
free_port() {
	local port i
	for ((i = 0; i < 100; i++)); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	fail "no free port found on 127.0.0.1"
}

# ---- build and start -------------------------------------------------------

note "building the plugin and the emulator"
make --no-print-directory build >"$work/build.log" 2>&1 || {
	cat "$work/build.log" >&2
	fail "make build failed"
}
vault_bin=$(scripts/vault/ensure.sh) || fail "no Vault binary (scripts/vault/ensure.sh)"

# The operator's commands below say `vault`; this is the one they run.
vault() { "$vault_bin" "$@"; }
for v in $(compgen -e); do
	if [[ $v == VAULT_* ]]; then
		unset "$v"
	fi
done

mkdir -p "$work/plugins"
cp "bin/$plugin" "$work/plugins/$plugin"
sha=$(sha256sum "$work/plugins/$plugin" | awk '{ print $1 }')

note "starting the accounts emulator"
emu_args=(-listen 127.0.0.1:0 -ready-file "$work/emulator.url" -client-id "$client_id")
if ((auto_approve)); then
	emu_args+=(-auto-approve)
fi
# The secret goes through the environment, not the process list.
UNITYCRM_EMULATOR_CLIENT_SECRET=$client_secret \
	"bin/$emulator" "${emu_args[@]}" >"$work/emulator.log" 2>&1 &
emu_pid=$!
pids+=("$emu_pid")
for ((i = 0; i < 100; i++)); do
	[[ -s $work/emulator.url ]] && break
	kill -0 "$emu_pid" 2>/dev/null || fail "the emulator exited at start"
	sleep 0.1
done
[[ -s $work/emulator.url ]] || fail "the emulator did not report its address"
emu_url=$(<"$work/emulator.url")
printf 'emulator on %s (client %s)\n' "$emu_url" "$client_id"

note "starting a dev Vault ($("$vault_bin" version | awk '{ sub(/,$/, "", $2); print $2 }'))"
port=$(free_port)
export VAULT_ADDR=http://127.0.0.1:$port VAULT_TOKEN=root
"$vault_bin" server -dev -dev-root-token-id=root \
	-dev-listen-address="127.0.0.1:$port" \
	-dev-plugin-dir="$work/plugins" -dev-plugin-init=false \
	-dev-no-store-token -log-level=debug \
	>"$work/vault.log" 2>&1 &
vault_pid=$!
pids+=("$vault_pid")
for ((i = 0; i < 300; i++)); do
	curl -fs -o /dev/null "$VAULT_ADDR/v1/sys/health" && break
	kill -0 "$vault_pid" 2>/dev/null || fail "vault exited at start"
	sleep 0.2
done
curl -fs -o /dev/null "$VAULT_ADDR/v1/sys/health" || fail "vault did not become healthy"
printf 'vault on %s (log %s)\n' "$VAULT_ADDR" "$work/vault.log"

# ---- the walk-through ------------------------------------------------------

# run prints the command as shown, then runs the rest and prints its output,
# scrubbed; the raw output stays in $out for the next step.
run() {
	local shown_as=$1
	shift
	shown "$shown_as"
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" | scrub
		fail "'$shown_as' failed"
	fi
	printf '%s\n' "$out" | scrub
}

# field prints a key's value from `vault read/write` table output.
field() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }' <<<"$out"; }

# crm calls the CRM API with an Authorization header and prints the status.
crm() {
	local header=$1 url=$2
	shown "curl -s -H \"Authorization: Zoho-oauthtoken $(mask "${header#Zoho-oauthtoken }")\" $url"
	status=$(curl -s -o "$work/crm.json" -w '%{http_code}' -H "Authorization: $header" "$url") ||
		fail "the CRM API at $url did not answer"
	printf '%s\nHTTP %s\n' "$(<"$work/crm.json")" "$status"
}

note "register the plugin binary with its checksum and version"
run "vault plugin register -sha256=$sha -version=$version secret $plugin" \
	vault plugin register -sha256="$sha" -version="$version" secret "$plugin"

note "enable it"
run "vault secrets enable -path=$mount $plugin" \
	vault secrets enable -path="$mount" "$plugin"

note "configure the OAuth client (the emulator stands in for the accounts server)"
config_shown="vault write $mount/config client_id=$client_id client_secret=<redacted>"
config_shown+=" accounts_url=$emu_url redirect_uri=$emu_url/callback"
run "$config_shown" \
	vault write "$mount/config" client_id="$client_id" client_secret="$client_secret" \
	accounts_url="$emu_url" redirect_uri="$emu_url/callback"
run "vault read $mount/config" vault read "$mount/config"

note "ask for the URL a CRM user opens to grant a code"
run "vault write $mount/auth-code-url name=$cred" vault write "$mount/auth-code-url" name="$cred"
auth_url=$(field url)
[[ $auth_url == http* ]] || fail "auth-code-url returned no url"

if ((auto_approve)); then
	note "the user approves (the emulator runs with -auto-approve and redirects at once)"
	shown "curl -s -o /dev/null -w '%{redirect_url}' '$(scrub <<<"$auth_url")'"
	callback=$(curl -s -o /dev/null -w '%{redirect_url}' "$auth_url") ||
		fail "the emulator did not answer the auth URL"
	scrub <<<"$callback"
else
	note "open this URL in a browser on this machine, sign in and click Approve:"
	# The person needs the whole URL; its state is single-use and expires.
	printf '\n  %s\n' "$auth_url"
	note "the browser lands on $emu_url/callback, which shows the URL to copy"
	read -r -s -p "paste that URL here (input hidden): " callback
	echo
fi
callback=$(tr -d '[:space:]' <<<"$callback")
[[ $callback == *code=* ]] ||
	fail "the callback URL carries no code: the consent did not go through"

note "store the credential: the code is exchanged inside the write"
run "vault write $mount/creds/$cred callback_url='$(scrub <<<"$callback")'" \
	vault write "$mount/creds/$cred" callback_url="$callback"

note "an application reads a leased access token"
shown "vault read $mount/creds/$cred"
out=$(vault read "$mount/creds/$cred" 2>&1) || {
	printf '%s\n' "$out" | scrub
	fail "'vault read $mount/creds/$cred' failed"
}
token=$(field access_token)
[[ -n $token ]] || fail "the read returned no access_token"
secrets+=("$token")
printf '%s\n' "$out" | scrub
lease_id=$(field lease_id)
api_domain=$(field api_domain)
header=$(field authorization_header)
[[ -n $lease_id && -n $api_domain && $header == "Zoho-oauthtoken $token" ]] ||
	fail "the read lacks lease_id, api_domain or authorization_header"

note "it calls the CRM API at the returned api_domain"
crm "$header" "$api_domain/crm/v2/org"
[[ $status == 200 ]] || fail "the CRM API refused the leased token (HTTP $status, want 200)"

note "revoke the lease: the engine revokes its token at the accounts server"
run "vault lease revoke -sync $lease_id" vault lease revoke -sync "$lease_id"

note "the same call is now refused"
crm "$header" "$api_domain/crm/v2/org"
[[ $status == 401 ]] || fail "the CRM API still accepts the revoked token (HTTP $status, want 401)"
shown "curl -s '$emu_url/_emulator/token?token=$(mask "$token")'"
live=$(curl -s --get --data-urlencode "token=$token" "$emu_url/_emulator/token")
printf '%s\n' "$live"
[[ $live == *'"live":false'* ]] || fail "the emulator still holds the revoked token live"

if [[ $mode == demo ]]; then
	printf '\n%sdemo passed:%s %s\n' "$green" "$off" \
		"the leased token worked (HTTP 200) and was refused once its lease was revoked (HTTP 401)"
	exit 0
fi

# ---- make dev: keep serving ------------------------------------------------

# From here on Ctrl-C is the normal way out.
# shellcheck disable=SC2034 # read by the signal traps
serving=1
cat <<EOF

${green}The walk-through passed.${off} Vault and the emulator keep running until Ctrl-C.

  export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root
  alias vault=$vault_bin

$(printf '  %-48s# %s\n' \
	"vault read $mount/creds/$cred" "a new leased token" \
	"vault read $mount/creds/$cred/status" "mints, live tokens, last error" \
	"vault write $mount/auth-code-url name=other" "authorize another user" \
	"vault lease revoke -prefix $mount/creds/$cred" "end every lease of $cred")

  emulator      $emu_url  (consent page, /callback, /_emulator/counts)
  client        $client_id (its secret is random and stays in Vault)
  logs          $work/vault.log
                $work/emulator.log
EOF
while kill -0 "$vault_pid" 2>/dev/null && kill -0 "$emu_pid" 2>/dev/null; do
	sleep 1
done
fail "a server exited on its own"
