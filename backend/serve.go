package backend

import (
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"
)

// Serve runs the engine as a Vault plugin, reading the TLS flags Vault
// passes in args, until Vault stops it.
func Serve(args []string) error {
	meta := &api.PluginAPIClientMeta{}
	if err := meta.FlagSet().Parse(args); err != nil {
		return err
	}
	return plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	})
}
