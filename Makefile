# Build, test and try the Unity CRM secrets engine.
#
#   make build   plugin, emulator and helper binaries into bin/
#   make vault   find or build the pinned Vault (scripts/vault/ensure.sh)
#   make test    gofmt, go vet, unit tests with -race, e2e tests on a real Vault
#   make dev     emulator + dev Vault, the whole flow once, then keep running
#   make demo    the same flow, unattended; exits non-zero if a step misbehaves
#   make clean   remove bin/ (the cached Vault build stays)

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

.PHONY: build vault test fmt-check vet unit e2e dev demo clean

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

dev:
	scripts/dev.sh $(DEV_FLAGS)

demo:
	scripts/dev.sh --demo

clean:
	rm -rf $(BIN)
