//go:build e2e

package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// TestFullFlow walks one credential from consent to revocation: the token
// works at the CRM API until its lease is revoked, then it is refused.
func TestFullFlow(t *testing.T) {
	showLogOnFailure(t, env.vault)
	c, emu := env.client, env.emu
	ctx := testCtx(t)

	stored := authorize(t, c, mountPath, emu, "flow")
	if stored["api_domain"] != emu.URL {
		t.Errorf("creds write api_domain = %v, want the emulator's %s",
			stored["api_domain"], emu.URL)
	}
	for _, f := range []string{"scopes", "created_at"} {
		if _, ok := stored[f]; !ok {
			t.Errorf("creds write answer lacks %s: %v", f, stored)
		}
	}

	before := emu.Counts()
	l := readCreds(t, c, mountPath, "flow")
	if d := emu.Counts().Refreshes - before.Refreshes; d != 0 {
		t.Errorf("the first read minted %d tokens; the code exchange's token should serve it", d)
	}
	if !l.Renewable {
		t.Errorf("lease %s is not renewable", l.ID)
	}
	if l.APIDomain != emu.URL {
		t.Errorf("api_domain = %q, want the one the accounts server returned, %q",
			l.APIDomain, emu.URL)
	}
	if left := time.Until(l.ExpiresAt); left < 55*time.Minute || left > time.Hour+time.Minute {
		t.Errorf("expires_at is %v away; the emulator's tokens live an hour", left)
	}
	wantCRM(t, emu, l, http.StatusOK)

	// Asking for two hours gets at most what the token has left.
	renewedAt := time.Now()
	s, err := c.Sys().RenewWithContext(ctx, l.ID, int((2 * time.Hour).Seconds()))
	if err != nil {
		t.Fatalf("renew %s: %v", l.ID, err)
	}
	if s.LeaseID != l.ID || s.LeaseDuration <= 0 {
		t.Errorf("renew answered lease %q for %ds, want %q for > 0s", s.LeaseID,
			s.LeaseDuration, l.ID)
	}
	checkLeaseWithinToken(t, time.Duration(s.LeaseDuration)*time.Second, renewedAt, l.ExpiresAt)

	// A shorter increment is granted as asked.
	s, err = c.Sys().RenewWithContext(ctx, l.ID, 60)
	if err != nil {
		t.Fatalf("renew %s by 60s: %v", l.ID, err)
	}
	if s.LeaseDuration < 59 || s.LeaseDuration > 60 {
		t.Errorf("renew by 60s granted %ds", s.LeaseDuration)
	}
	wantCRM(t, emu, l, http.StatusOK)

	before = emu.Counts()
	revokeLease(t, c, l.ID)
	if d := emu.Counts().Revocations - before.Revocations; d != 1 {
		t.Errorf("revoking the only lease made %d upstream revocations, want 1", d)
	}
	wantCRM(t, emu, l, http.StatusUnauthorized)
	if _, err := c.Sys().LookupWithContext(ctx, l.ID); err == nil {
		t.Errorf("lease %s still exists after sys/leases/revoke", l.ID)
	}
}

// TestCallbackReplayRefused writes a callback URL a second time: its state
// works once, so the write is refused before anything is sent upstream.
func TestCallbackReplayRefused(t *testing.T) {
	showLogOnFailure(t, env.vault)
	c, emu := env.client, env.emu
	ctx := testCtx(t)

	grant, err := c.Logical().WriteWithContext(ctx, mountPath+"/auth-code-url",
		map[string]any{"name": "replay"})
	if err != nil {
		t.Fatal(err)
	}
	callback, err := emu.Approve(grant.Data["url"].(string), "")
	if err != nil {
		t.Fatal(err)
	}
	path := mountPath + "/creds/replay"
	if _, err := c.Logical().WriteWithContext(ctx, path,
		map[string]any{"callback_url": callback}); err != nil {
		t.Fatalf("first write: %v", err)
	}
	t.Cleanup(func() { c.Logical().Delete(path) })

	before := emu.Counts()
	_, err = c.Logical().WriteWithContext(ctx, path, map[string]any{"callback_url": callback})
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "state") {
		t.Errorf("second write of the same callback_url: %v; want 400 about the state", err)
	}
	if after := emu.Counts(); after.TokenRequests != before.TokenRequests {
		t.Errorf("the refused write reached the accounts server: %s",
			countsDelta(before, after))
	}
}

// TestReadsShareToken reads one credential twice: both leases carry the
// same token, which is revoked upstream only when the second lease ends.
func TestReadsShareToken(t *testing.T) {
	showLogOnFailure(t, env.vault)
	c, emu := env.client, env.emu

	authorize(t, c, mountPath, emu, "shared")
	before := emu.Counts()
	l1 := readCreds(t, c, mountPath, "shared")
	l2 := readCreds(t, c, mountPath, "shared")
	if l1.ID == l2.ID {
		t.Fatalf("two reads gave one lease, %s", l1.ID)
	}
	if l1.AccessToken != l2.AccessToken {
		t.Errorf("two reads a moment apart gave two access tokens; they should share one")
	}
	if d := emu.Counts().Refreshes - before.Refreshes; d != 0 {
		t.Errorf("two reads minted %d tokens, want 0 (the exchange's token is fresh)", d)
	}

	before = emu.Counts()
	revokeLease(t, c, l1.ID)
	if after := emu.Counts(); after.Revocations != before.Revocations {
		t.Errorf("revoking one of two leases revoked upstream: %s", countsDelta(before, after))
	}
	wantCRM(t, emu, l2, http.StatusOK)

	revokeLease(t, c, l2.ID)
	if d := emu.Counts().Revocations - before.Revocations; d != 1 {
		t.Errorf("revoking both leases made %d upstream revocations, want 1", d)
	}
	wantCRM(t, emu, l1, http.StatusUnauthorized)
}

// TestRevokePrefix revokes every lease of a credential at once, as a
// security team would with `vault lease revoke -prefix`.
func TestRevokePrefix(t *testing.T) {
	showLogOnFailure(t, env.vault)

	t.Run("leases on one token", func(t *testing.T) {
		c, emu := env.client, env.emu
		authorize(t, c, mountPath, emu, "prefix")
		authorize(t, c, mountPath, emu, "bystander")
		var leases []lease
		for range 3 {
			leases = append(leases, readCreds(t, c, mountPath, "prefix"))
		}
		other := readCreds(t, c, mountPath, "bystander")

		before := emu.Counts()
		if err := c.Sys().RevokePrefixWithContext(testCtx(t),
			mountPath+"/creds/prefix"); err != nil {
			t.Fatalf("sys/leases/revoke-prefix: %v", err)
		}
		if d := emu.Counts().Revocations - before.Revocations; d != 1 {
			t.Errorf("revoke-prefix made %d upstream revocations, want 1 (one shared token)", d)
		}
		for _, l := range leases {
			wantCRM(t, emu, l, http.StatusUnauthorized)
		}
		wantCRM(t, emu, other, http.StatusOK)
		revokeLease(t, c, other.ID)
	})

	t.Run("many tokens", func(t *testing.T) {
		// Tokens that live two minutes are never worth sharing with a
		// min_token_ttl of five: every read mints its own.
		emu := accountstest.NewServer(accountstest.Options{AccessTokenTTL: 2 * time.Minute})
		t.Cleanup(emu.Close)
		emu.AddClient(accountstest.Client{
			ID: clientID, Secret: clientSecret,
			RedirectURIs: []string{emu.URL + "/callback"},
		})
		c := env.client
		mount := mountPath + "-short"
		mountShort(t, c, mount, emu.URL, map[string]any{"min_token_ttl": 300})

		authorize(t, c, mount, emu, "many")
		var leases []lease
		seen := map[string]bool{}
		for range 3 {
			l := readCreds(t, c, mount, "many")
			leases = append(leases, l)
			seen[l.AccessToken] = true
		}
		if len(seen) != 3 {
			t.Fatalf("3 reads gave %d distinct tokens, want 3", len(seen))
		}
		for _, l := range leases {
			wantCRM(t, emu, l, http.StatusOK)
		}

		before := emu.Counts()
		if err := c.Sys().RevokePrefixWithContext(testCtx(t), mount+"/creds/many"); err != nil {
			t.Fatalf("sys/leases/revoke-prefix: %v", err)
		}
		if d := emu.Counts().Revocations - before.Revocations; d != 3 {
			t.Errorf("revoke-prefix made %d upstream revocations, want 3", d)
		}
		for _, l := range leases {
			wantCRM(t, emu, l, http.StatusUnauthorized)
		}
	})
}

// mountShort enables a second instance of the plugin at mount, configured
// against accountsURL with extra config fields, removed when t ends.
func mountShort(t *testing.T, c *api.Client, mount, accountsURL string, extra map[string]any) {
	t.Helper()
	ctx := testCtx(t)
	if err := c.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: pluginName}); err != nil {
		t.Fatalf("enable at %s: %v", mount, err)
	}
	t.Cleanup(func() { c.Sys().Unmount(mount) })

	cfg := map[string]any{
		"client_id":     clientID,
		"client_secret": clientSecret,
		"accounts_url":  accountsURL,
		"redirect_uri":  accountsURL + "/callback",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	if _, err := c.Logical().WriteWithContext(ctx, mount+"/config", cfg); err != nil {
		t.Fatalf("configure %s: %v", mount, err)
	}
}

// TestDeleteRevokesRefreshToken deletes a credential: its refresh token is
// revoked upstream, taking its access tokens with it, and Vault forgets it.
func TestDeleteRevokesRefreshToken(t *testing.T) {
	showLogOnFailure(t, env.vault)
	c, emu := env.client, env.emu
	ctx := testCtx(t)
	path := mountPath + "/creds/gone"

	authorize(t, c, mountPath, emu, "gone")
	l := readCreds(t, c, mountPath, "gone")
	held := emu.RefreshTokens(clientID, "")

	before := emu.Counts()
	if _, err := c.Logical().DeleteWithContext(ctx, path); err != nil {
		t.Fatalf("delete %s: %v", path, err)
	}
	if d := emu.Counts().Revocations - before.Revocations; d != 1 {
		t.Errorf("delete made %d upstream revocations, want 1", d)
	}
	if got := emu.RefreshTokens(clientID, ""); got != held-1 {
		t.Errorf("the user holds %d refresh tokens after the delete, want %d", got, held-1)
	}
	wantCRM(t, emu, l, http.StatusUnauthorized)

	list, err := c.Logical().ListWithContext(ctx, mountPath+"/creds")
	if err != nil {
		t.Fatalf("list creds: %v", err)
	}
	if list != nil {
		keys, _ := list.Data["keys"].([]any)
		if slices.Contains(keys, any("gone")) {
			t.Errorf("creds/ still lists %q after the delete: %v", "gone", keys)
		}
	}
	_, err = c.Logical().ReadRawWithContext(ctx, path)
	if statusOf(err) != http.StatusNotFound {
		t.Errorf("read of the deleted credential: %v; want 404", err)
	}

	// The lease outlived its credential; revoking it is a quiet success.
	before = emu.Counts()
	revokeLease(t, c, l.ID)
	if after := emu.Counts(); after.Revocations != before.Revocations {
		t.Errorf("revoking the orphaned lease called upstream: %s", countsDelta(before, after))
	}
}
