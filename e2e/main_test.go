//go:build e2e

// Package e2e drives the plugin inside a real Vault server binary (VAULT_BIN)
// against the accounts-server emulator, through Vault's HTTP API, the way an
// operator and an application would. Run it with `make test`, or:
//
//	VAULT_BIN=$(scripts/vault/ensure.sh) go test -tags e2e -count=1 ./e2e/...
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/version"
)

const (
	pluginName = "vault-plugin-secrets-unitycrm"
	mountPath  = "unitycrm"

	// The OAuth client registered at the emulator and written to config.
	clientID     = "1000.E2ETESTCLIENT"
	clientSecret = "e2e-client-secret"

	// rootToken is the dev server's root token.
	rootToken = "root"
)

// env is what every test shares: one plugin build, one emulator and one
// dev Vault with the plugin enabled at unitycrm/.
var env struct {
	vaultBin  string
	tmp       string
	pluginDir string
	pluginSHA string

	emu   *accountstest.Server
	vault *vaultProcess
	// client talks to the dev Vault as root.
	client *api.Client
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	env.vaultBin = os.Getenv("VAULT_BIN")
	if env.vaultBin == "" {
		fmt.Fprintln(os.Stderr, "e2e: VAULT_BIN is not set; run `make test`, or\n"+
			"  VAULT_BIN=$(scripts/vault/ensure.sh) go test -tags e2e -count=1 ./e2e/...")
		return 1
	}

	tmp, err := os.MkdirTemp("", "unitycrm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	env.tmp = tmp

	if err := setUp(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: set up:", err)
		if env.vault != nil {
			fmt.Fprint(os.Stderr, env.vault.logTail(60))
		}
		tearDown()
		return 1
	}

	// Each test prints the tail of Vault's log when it fails.
	code := m.Run()
	tearDown()
	return code
}

// setUp builds the plugin, starts the emulator and a dev Vault, then
// registers, enables and configures the plugin as an operator would.
func setUp() error {
	var err error
	env.pluginDir = filepath.Join(env.tmp, "plugins")
	env.pluginSHA, err = buildPlugin(env.pluginDir)
	if err != nil {
		return err
	}

	// The tests authorize more users a minute than the provider's four grant
	// codes per client; that throttle is the unit tests' business.
	env.emu = accountstest.NewServer(accountstest.Options{CodeLimit: 100})
	env.emu.AddClient(accountstest.Client{
		ID:           clientID,
		Secret:       clientSecret,
		RedirectURIs: []string{env.emu.URL + "/callback"},
	})

	port, err := freePort()
	if err != nil {
		return err
	}
	env.vault, err = startVault(env.vaultBin, filepath.Join(env.tmp, "vault-dev.log"),
		"server", "-dev",
		"-dev-root-token-id="+rootToken,
		"-dev-listen-address=127.0.0.1:"+port,
		"-dev-plugin-dir="+env.pluginDir,
		// Register nothing by itself: the test registers with a version,
		// as on a production server.
		"-dev-plugin-init=false",
		"-dev-no-store-token",
		"-log-level=debug",
	)
	if err != nil {
		return err
	}
	env.vault.addr = "http://127.0.0.1:" + port

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := env.vault.waitResponding(ctx); err != nil {
		return err
	}
	env.client, err = newClient(env.vault.addr, rootToken)
	if err != nil {
		return err
	}
	if err := waitActive(ctx, env.client); err != nil {
		return err
	}
	return enablePlugin(ctx, env.client, mountPath, env.emu.URL)
}

func tearDown() {
	if env.vault != nil {
		env.vault.stop()
	}
	if env.emu != nil {
		env.emu.Close()
	}
}

// buildPlugin builds the plugin binary into dir and returns its SHA-256.
func buildPlugin(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, pluginName)

	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/"+pluginName)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build plugin: %w\n%s", err, b)
	}

	f, err := os.Open(out)
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

// enablePlugin registers the plugin with its checksum and version, enables
// it at path and configures it against the accounts server at accountsURL.
func enablePlugin(ctx context.Context, c *api.Client, path, accountsURL string) error {
	err := c.Sys().RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name:    pluginName,
		Type:    api.PluginTypeSecrets,
		Command: pluginName,
		SHA256:  env.pluginSHA,
		Version: version.Version,
	})
	if err != nil {
		return fmt.Errorf("register plugin: %w", err)
	}

	// No plugin_version: Vault picks the one registered version, as it
	// does for `vault secrets enable -path=unitycrm <plugin>`.
	if err := c.Sys().MountWithContext(ctx, path, &api.MountInput{Type: pluginName}); err != nil {
		return fmt.Errorf("enable plugin at %s: %w", path, err)
	}

	_, err = c.Logical().WriteWithContext(ctx, path+"/config", map[string]any{
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
