// Command vault builds HashiCorp Vault's own command package at the release
// pinned in go.mod, so that development and tests run a real Vault server.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
