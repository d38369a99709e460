//go:build e2e

// Package e2e drives the plugin inside a real Vault server binary (VAULT_BIN)
// against the accounts-server emulator, through Vault's HTTP API, the way an
// operator and an application would. Run it with `make test`, or:
//
//	VAULT_BIN=$(scripts/vault/ensure.sh) go test -tags e2e -count=1 ./e2e/...
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
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
	vaultBin string
	tmp      string
	plugin   *vaulttest.Plugin

	emu   *accountstest.Server
	vault *vaulttest.Process
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
			fmt.Fprint(os.Stderr, logTail(env.vault, 60))
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
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	env.plugin, err = vaulttest.BuildPlugin(root, "./cmd/"+pluginName,
		filepath.Join(env.tmp, "plugins"))
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

	port, err := vaulttest.FreePort()
	if err != nil {
		return err
	}
	env.vault, err = vaulttest.Start(env.vaultBin, "http://127.0.0.1:"+port,
		filepath.Join(env.tmp, "vault-dev.log"),
		"server", "-dev",
		"-dev-root-token-id="+rootToken,
		"-dev-listen-address=127.0.0.1:"+port,
		"-dev-plugin-dir="+env.plugin.Dir,
		// Register nothing by itself: the test registers with a version,
		// as on a production server.
		"-dev-plugin-init=false",
		"-dev-no-store-token",
		"-log-level=debug",
	)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := env.vault.WaitResponding(ctx); err != nil {
		return err
	}
	env.client, err = newClient(env.vault.Addr, rootToken)
	if err != nil {
		return err
	}
	if err := vaulttest.WaitActive(ctx, env.client); err != nil {
		return err
	}
	return enablePlugin(ctx, env.client, mountPath, env.emu.URL)
}

func tearDown() {
	env.vault.Stop()
	if env.emu != nil {
		env.emu.Close()
	}
}

// enablePlugin registers the plugin with its checksum and version, enables
// it at path and configures it against the accounts server at accountsURL.
func enablePlugin(ctx context.Context, c *api.Client, path, accountsURL string) error {
	err := vaulttest.EnablePlugin(ctx, c, env.plugin, path, api.MountConfigInput{})
	if err != nil {
		return err
	}
	return vaulttest.Configure(ctx, c, path, clientID, clientSecret, accountsURL)
}
