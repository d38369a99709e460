//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

// TestRestartWithFileStorage runs a production-shaped server (file storage,
// sealed on start) and restarts it between a read and the revocation of its
// lease: credentials and lease counts live in storage, so both survive.
func TestRestartWithFileStorage(t *testing.T) {
	dir := t.TempDir()
	emu := accountstest.NewServer(accountstest.Options{})
	t.Cleanup(emu.Close)
	emu.AddClient(accountstest.Client{
		ID: clientID, Secret: clientSecret,
		RedirectURIs: []string{emu.URL + "/callback"},
	})

	port, err := vaulttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://127.0.0.1:" + port
	config := fmt.Sprintf(`
storage "file" {
  path = %q
}

listener "tcp" {
  address     = "127.0.0.1:%s"
  tls_disable = true
}

plugin_directory = %q
api_addr         = %q
disable_mlock    = true
log_level        = "debug"
`, filepath.Join(dir, "data"), port, env.plugin.Dir, addr)
	configPath := filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	v, err := vaulttest.Start(env.vaultBin, addr, filepath.Join(dir, "vault.log"),
		"server", "-config="+configPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	showLogOnFailure(t, v)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := v.WaitResponding(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := newClient(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	key, root, err := vaulttest.Init(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := vaulttest.Unseal(ctx, c, key); err != nil {
		t.Fatal(err)
	}
	c.SetToken(root)
	if err := enablePlugin(ctx, c, mountPath, emu.URL); err != nil {
		t.Fatal(err)
	}

	authorize(t, c, mountPath, emu, "durable")
	l1 := readCreds(t, c, mountPath, "durable")
	wantCRM(t, emu, l1, http.StatusOK)

	// Stop and start the same server: sealed again, then unsealed.
	v.Stop()
	if err := v.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := v.WaitResponding(ctx); err != nil {
		t.Fatal(err)
	}
	if err := vaulttest.Unseal(ctx, c, key); err != nil {
		t.Fatal(err)
	}

	before := emu.Counts()
	l2 := readCreds(t, c, mountPath, "durable")
	if l2.AccessToken != l1.AccessToken {
		t.Errorf("the read after the restart got a new token; the stored one has an hour left")
	}
	if d := emu.Counts().Refreshes - before.Refreshes; d != 0 {
		t.Errorf("the read after the restart minted %d tokens, want 0", d)
	}
	wantCRM(t, emu, l2, http.StatusOK)

	// The lease count survived: the token outlives the newer lease...
	revokeLease(t, c, l2.ID)
	if after := emu.Counts(); after.Revocations != before.Revocations {
		t.Errorf("revoking one of two leases revoked upstream: %s", countsDelta(before, after))
	}
	wantCRM(t, emu, l1, http.StatusOK)

	// ...and ends with the lease from before the restart.
	revokeLease(t, c, l1.ID)
	if d := emu.Counts().Revocations - before.Revocations; d != 1 {
		t.Errorf("revoking the lease from before the restart made %d upstream "+
			"revocations, want 1", d)
	}
	wantCRM(t, emu, l1, http.StatusUnauthorized)
}
