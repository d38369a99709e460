package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

const (
	modulePath = "github.com/unitycrm/vault-plugin-secrets-unitycrm"
	pluginName = "vault-plugin-secrets-unitycrm"
	mountPath  = "unitycrm"
	kvPath     = "kv"

	clientID     = "1000.BENCHCLIENT"
	clientSecret = "bench-client-secret"
	devRootToken = "root"
)

// transport is shared by every client of the bench: keep-alive
// connections, enough idle ones for the highest concurrency.
var transport = &http.Transport{
	MaxIdleConns:        512,
	MaxIdleConnsPerHost: 512,
	IdleConnTimeout:     90 * time.Second,
	DisableCompression:  true,
}

// newAPIClient returns a Vault API client of addr using token, on the
// shared transport, without retries.
func newAPIClient(addr, token string) (*api.Client, error) {
	hc := &http.Client{Transport: transport, Timeout: 2 * time.Minute}
	return vaulttest.NewClient(addr, token, hc)
}

// enableEngine registers the plugin with its checksum and version, mounts
// it at unitycrm/ with the given lease TTL and configures it against the
// emulator.
func enableEngine(ctx context.Context, c *api.Client, p *vaulttest.Plugin,
	emu *accountstest.Server, leaseTTL time.Duration,
) error {
	err := vaulttest.EnablePlugin(ctx, c, p, mountPath, api.MountConfigInput{
		DefaultLeaseTTL: leaseTTL.String(),
		MaxLeaseTTL:     leaseTTL.String(),
	})
	if err != nil {
		return err
	}
	return vaulttest.Configure(ctx, c, mountPath, clientID, clientSecret, emu.URL)
}

// newEmulator starts the accounts emulator with limits high enough that
// it never throttles the bench: the engine's own quota guard is what the
// bench exercises.
func newEmulator() *accountstest.Server {
	emu := accountstest.NewServer(accountstest.Options{
		CodeLimit:        1_000_000,
		MintLimit:        1_000_000,
		MaxRefreshTokens: 1_000_000,
	})
	emu.AddClient(accountstest.Client{
		ID:           clientID,
		Secret:       clientSecret,
		RedirectURIs: []string{emu.URL + "/callback"},
	})
	return emu
}

// authorize does what an operator does for a new credential: asks for the
// grant-code URL, has the user approve it at the emulator and writes the
// URL the browser landed on to creds/<name>.
func authorize(ctx context.Context, c *api.Client, emu *accountstest.Server, name string) error {
	grant, err := c.Logical().WriteWithContext(ctx, mountPath+"/auth-code-url",
		map[string]any{"name": name})
	if err != nil {
		return fmt.Errorf("auth-code-url: %w", err)
	}
	authURL, _ := grant.Data["url"].(string)
	if authURL == "" {
		return fmt.Errorf("auth-code-url answered %v, want a url", grant.Data)
	}

	callback, err := emu.Approve(authURL, "")
	if err != nil {
		return fmt.Errorf("approve at the emulator: %w", err)
	}

	_, err = c.Logical().WriteWithContext(ctx, mountPath+"/creds/"+name,
		map[string]any{"callback_url": callback})
	if err != nil {
		return fmt.Errorf("write creds/%s callback_url=...: %w", name, err)
	}
	return nil
}

// configSeconds reads an integer field (seconds) of unitycrm/config.
func configSeconds(ctx context.Context, c *api.Client, field string) (time.Duration, error) {
	s, err := c.Logical().ReadWithContext(ctx, mountPath+"/config")
	if err != nil {
		return 0, err
	}
	if s == nil {
		return 0, errors.New("config is empty")
	}
	n, err := parseInt(s.Data[field])
	if err != nil {
		return 0, fmt.Errorf("config %s: %w", field, err)
	}
	return time.Duration(n) * time.Second, nil
}

// leasesUnder lists the leases Vault holds under prefix (such as
// unitycrm/creds/bench/) and returns how many there are.
func leasesUnder(ctx context.Context, c *api.Client, prefix string) (int, error) {
	s, err := c.Logical().ListWithContext(ctx, "sys/leases/lookup/"+prefix)
	if err != nil {
		return 0, err
	}
	if s == nil {
		return 0, nil
	}
	keys, _ := s.Data["keys"].([]any)
	return len(keys), nil
}

func parseInt(v any) (int64, error) {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		return n.Int64()
	case float64:
		return int64(n), nil
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	}
	return 0, fmt.Errorf("not a number: %v (%T)", v, v)
}

// writeFile writes content to path with owner-only permissions.
func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
