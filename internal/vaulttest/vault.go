package vaulttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/version"
)

// PluginName is the plugin's binary and catalog name.
const PluginName = "vault-plugin-secrets-unitycrm"

// Plugin is a plugin binary built into a server's plugin directory.
type Plugin struct {
	Dir    string   // the plugin directory
	Path   string   // the binary, symlinks resolved
	SHA256 string   // hex, as `vault plugin register -sha256` takes it
	Env    []string // the environment registered with it
}

// BuildPlugin builds the command package pkg (such as
// ./cmd/vault-plugin-secrets-unitycrm) of the module at root as a static
// binary named PluginName in dir.
func BuildPlugin(root, pkg, dir string) (*Plugin, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, PluginName)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}

	sum, err := fileSHA256(out)
	if err != nil {
		return nil, err
	}

	// Vault resolves the plugin directory's symlinks; /proc/<pid>/exe
	// names the resolved path.
	if real, err := filepath.EvalSymlinks(out); err == nil {
		out = real
	}
	return &Plugin{Dir: dir, Path: out, SHA256: sum}, nil
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// EnablePlugin registers p with its checksum, environment and the version
// from internal/version, then enables it at path with mount config cfg.
// No plugin_version: Vault picks the one registered version, as it does
// for `vault secrets enable -path=<path> <plugin>`.
func EnablePlugin(ctx context.Context, c *api.Client, p *Plugin, path string,
	cfg api.MountConfigInput,
) error {
	err := c.Sys().RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name:    PluginName,
		Type:    api.PluginTypeSecrets,
		Command: PluginName,
		SHA256:  p.SHA256,
		Version: version.Version,
		Env:     p.Env,
	})
	if err != nil {
		return fmt.Errorf("register plugin: %w", err)
	}

	err = c.Sys().MountWithContext(ctx, path, &api.MountInput{Type: PluginName, Config: cfg})
	if err != nil {
		return fmt.Errorf("enable plugin at %s: %w", path, err)
	}
	return nil
}

// Configure writes the plugin's config at path: the OAuth client and the
// accounts server at accountsURL, whose /callback is the redirect URI.
func Configure(ctx context.Context, c *api.Client, path, clientID, clientSecret,
	accountsURL string,
) error {
	_, err := c.Logical().WriteWithContext(ctx, path+"/config", map[string]any{
		"client_id":     clientID,
		"client_secret": clientSecret,
		"accounts_url":  accountsURL,
		"redirect_uri":  accountsURL + "/callback",
	})
	if err != nil {
		return fmt.Errorf("configure %s: %w", path, err)
	}
	return nil
}

// NewClient returns an API client of the server at addr using token,
// without retries, on hc or, if hc is nil, on the API's default HTTP
// client.
func NewClient(addr, token string, hc *http.Client) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	if hc != nil {
		cfg.HttpClient = hc
	}
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

// Init initializes a fresh server with one key share and returns the
// unseal key and the root token.
func Init(ctx context.Context, c *api.Client) (key, rootToken string, err error) {
	resp, err := c.Sys().InitWithContext(ctx,
		&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return "", "", fmt.Errorf("init: %w", err)
	}
	return resp.Keys[0], resp.RootToken, nil
}

// Unseal unseals the server with its one key share and waits until it is
// active.
func Unseal(ctx context.Context, c *api.Client, key string) error {
	st, err := c.Sys().UnsealWithContext(ctx, key)
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if st.Sealed {
		return errors.New("still sealed after the one key share")
	}
	return WaitActive(ctx, c)
}

// WaitActive polls until the server is initialized, unsealed and active.
func WaitActive(ctx context.Context, c *api.Client) error {
	for {
		h, err := c.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not active")
			}
			return fmt.Errorf("vault did not become active: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
