# Build, test and try the Unity CRM secrets engine.
#
#   make build   plugin, emulator and helper binaries into bin/
#   make vault   find or build the pinned Vault (scripts/vault/ensure.sh)
#   make test    gofmt, go vet, unit tests with -race, e2e tests on a real Vault
#   make test-full  the same plus fuzzing and the long load and failover forms,
#                ending in a summary table
#   make bench   benchmarks in-process and through a real Vault, against KV v1;
#                writes bench/RESULTS.md
#   make dev     emulator + dev Vault, the whole flow once, then keep running
#   make demo    the same flow, unattended; exits non-zero if a step misbehaves
#   make dist    static release binaries for linux/darwin amd64/arm64 + SHA256SUMS
#   make clean   remove bin/ and dist/ (the cached Vault build stays)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
BIN     := bin
VERSION := $(shell cat internal/version/VERSION)
PLUGIN  := vault-plugin-secrets-unitycrm
EMULATOR := unitycrm-accounts-emulator

# Extra flags for scripts/dev.sh, e.g. make dev DEV_FLAGS=--auto-approve.
DEV_FLAGS ?=

.PHONY: build vault test fmt-check vet unit e2e dev demo dist clean bench test-full

# Every command under cmd/: the plugin, the emulator and the helpers. The
# plugin embeds its version from internal/version/VERSION; static binaries
# run in any plugin directory.
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...
	@echo "built $(BIN)/$(PLUGIN) $(VERSION), $(BIN)/$(EMULATOR) and the other commands in $(BIN)/"

vault:
	@scripts/vault/ensure.sh

test: fmt-check vet unit e2e

fmt-check:
	@unformatted=$$(gofmt -l .); \
	if [[ -n $$unformatted ]]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; \
	fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...

unit:
	$(GO) test -race ./...

e2e:
	vault_bin=$$(scripts/vault/ensure.sh); \
	VAULT_BIN=$$vault_bin $(GO) test -tags e2e -count=1 ./e2e/...

# The long form of the reliability suite: what `make test` runs, then the
# bad-input and provider-fault tables verbosely, each fuzz target for
# FUZZTIME (default 20s), and the e2e tests with E2E_FULL=1 (a minute of
# load, a longer failover), ending with a markdown table of what was tried
# and what held.
test-full: fmt-check vet unit
	@vault_bin=$$(scripts/vault/ensure.sh); \
	fuzztime=$${FUZZTIME:-20s}; \
	rows=$$(mktemp); table=$$(mktemp); log=$$(mktemp); \
	trap 'rm -f "$$rows" "$$table" "$$log"' EXIT; \
	echo "== bad input and provider faults"; \
	$(GO) test -count=1 -v -run '^(TestBadInput|TestProviderFaults.*)$$' ./backend/ \
		| tee "$$log" | grep -E '^(=== RUN|--- |    [a-z_]+_test.go:)' ; \
	bad=$$(grep -o '[0-9]* malformed requests tried, [0-9]* held' "$$log" | tail -1); \
	faults=$$(grep -c -- '--- PASS: TestProviderFaults' "$$log"); \
	echo "| bad input (backend) | malformed requests on every path: missing and conflicting fields, bad names, huge values, bad URLs, non-https endpoints, unknown data centers, wrong, reused and expired states, foreign accounts servers | $$bad: each a 400 naming the field, storage unchanged, nothing sent upstream | PASS |" >> "$$rows"; \
	echo "| provider faults (backend) | latency past the timeout, 502 and 503 pages, connection reset, malformed JSON, HTML in HTTP 200, Access Denied and its localized form, throttling mid-burst, an outage while a token is valid | $$faults tests and cases passed: the caller's status and message per fault, refresh token intact, one upstream request then backoff | PASS |" >> "$$rows"; \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' backend); do \
		pkg=./$$(dirname "$$file"); \
		for fn in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' "$$file" | cut -d' ' -f2); do \
			echo "== $$fn ($$pkg) for $$fuzztime"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime "$$fuzztime" "$$pkg" 2>&1 | tee "$$log"; \
			execs=$$(grep -o 'execs: [0-9]*' "$$log" | tail -1 | cut -d' ' -f2); \
			echo "| fuzz $$fn | $$fuzztime of go test -fuzz on $$pkg from its seed corpus | $${execs:-?} executions, 0 crashes | PASS |" >> "$$rows"; \
		done; \
	done; \
	echo "== e2e, full form"; \
	status=0; \
	VAULT_BIN=$$vault_bin E2E_FULL=1 E2E_SUMMARY_ROWS=$$rows E2E_SUMMARY_OUT=$$table \
		$(GO) test -tags e2e -count=1 -v -timeout 30m ./e2e/... || status=$$?; \
	cat "$$table"; \
	exit $$status

dev:
	scripts/dev.sh $(DEV_FLAGS)

demo:
	scripts/dev.sh --demo

# Static release binaries for each platform, named with the version, and
# their checksums; `vault plugin register -sha256` takes the plugin's.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

dist:
	@rm -rf dist && mkdir -p dist
	@for p in $(PLATFORMS); do \
		os=$${p%/*} arch=$${p#*/}; \
		for cmd in $(PLUGIN) $(EMULATOR) unitycrm-login; do \
			out=dist/$${cmd}_$(VERSION)_$${os}_$${arch}; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
				-ldflags "-s -w" -o $$out ./cmd/$$cmd; \
			echo "built $$out"; \
		done; \
	done
	@cd dist && sha256sum * > SHA256SUMS && echo "wrote dist/SHA256SUMS"

clean:
	rm -rf $(BIN) dist

# The engine against Vault's own KV v1, side by side in one run (about six
# minutes): prints a markdown table and writes bench/RESULTS.md. Extra flags
# for bench/cmd/unitycrm-bench, e.g. make bench BENCH_FLAGS='-keep'.
bench:
	vault_bin=$$(scripts/vault/ensure.sh); \
	VAULT_BIN=$$vault_bin $(GO) run ./bench/cmd/unitycrm-bench $(BENCH_FLAGS)
