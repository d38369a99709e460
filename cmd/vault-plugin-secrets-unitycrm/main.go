// Command vault-plugin-secrets-unitycrm is the Unity CRM secrets engine as
// a Vault plugin.
package main

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend"
)

func main() {
	if err := backend.Serve(os.Args[1:]); err != nil {
		hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}
