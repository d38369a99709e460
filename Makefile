# Build, test and try the Unity CRM secrets engine.
#
#   make build   plugin, emulator and helper binaries into bin/
#   make vault   find or build the pinned Vault (scripts/vault/ensure.sh)
#   make test    gofmt, go vet, unit tests with -race, e2e tests on a real Vault
#   make dev     emulator + dev Vault, the whole flow once, then keep running
#   make demo    the same flow, unattended; exits non-zero if a step misbehaves
#   make dist    static release binaries for linux/darwin amd64/arm64 + SHA256SUMS
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

.PHONY: build vault test fmt-check vet unit e2e dev demo dist clean

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
