package backend

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

func TestLease_ReadsShareTheCurrentToken(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")

	first := e.read("office")
	e.clock.Advance(30 * time.Minute)
	second := e.read("office")
	if first.Data["access_token"] != second.Data["access_token"] {
		t.Fatal("a token with 30 minutes left was not reused")
	}
	if second.Secret.TTL != 30*time.Minute-30*time.Second {
		t.Fatalf("second lease TTL %v, want the token's remaining 30m less 30s", second.Secret.TTL)
	}
	if c := e.emu.Counts(); c.Refreshes != 0 {
		t.Fatalf("refreshes = %d, want 0", c.Refreshes)
	}
}

func TestLease_MintsWhenTokenIsNearExpiry(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	first := e.read("office")

	// Less than min_token_ttl (5m) left: a new token is minted.
	e.clock.Advance(55*time.Minute + time.Second)
	second := e.read("office")
	if first.Data["access_token"] == second.Data["access_token"] {
		t.Fatal("a token with under 5 minutes left was handed out again")
	}
	if second.Secret.TTL != time.Hour-30*time.Second {
		t.Fatalf("new lease TTL %v", second.Secret.TTL)
	}
	if c := e.emu.Counts(); c.Refreshes != 1 {
		t.Fatalf("refreshes = %d, want 1", c.Refreshes)
	}
}

func TestLease_TTLCappedByMountAndToken(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")

	e.sys.DefaultLeaseTTLVal = 10 * time.Minute
	if ttl := e.read("office").Secret.TTL; ttl != 10*time.Minute {
		t.Fatalf("TTL %v, want the mount's 10m", ttl)
	}
	e.sys.DefaultLeaseTTLVal = 24 * time.Hour
	e.sys.MaxLeaseTTLVal = 20 * time.Minute
	e.b.ttls = ttlCache{} // a tune reaches reads within a second
	if ttl := e.read("office").Secret.TTL; ttl != 20*time.Minute {
		t.Fatalf("TTL %v, want the mount's max 20m", ttl)
	}
}

func TestLease_LegacyMillisecondExpiry(t *testing.T) {
	e := getTestBackend(t, func(o *accountstest.Options) { o.LegacyExpiry = true })
	e.configure(nil)
	e.newCred("office")

	read := e.read("office")
	if read.Secret.TTL != time.Hour-30*time.Second {
		t.Fatalf("TTL %v: expires_in read in the wrong unit", read.Secret.TTL)
	}
}

func TestLease_LastLeaseRevokesTokenUpstream(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	a := e.read("office")
	b := e.read("office")
	tok := a.Data["access_token"].(string)

	if err := e.revokeLease(a); err != nil {
		t.Fatal(err)
	}
	if !e.emu.IsLive(tok) {
		t.Fatal("token revoked while a lease on it remains")
	}
	if err := e.revokeLease(b); err != nil {
		t.Fatal(err)
	}
	if e.emu.IsLive(tok) {
		t.Fatal("token still live after its last lease ended")
	}

	// It is never handed out again.
	c := e.read("office")
	if c.Data["access_token"] == tok {
		t.Fatal("a revoked token was handed out again")
	}
	if !e.emu.IsLive(c.Data["access_token"].(string)) {
		t.Fatal("the new token is not live")
	}
}

func TestLease_RevokeAfterExpirySkipsUpstream(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	lease := e.read("office")

	e.clock.Advance(2 * time.Hour)
	if err := e.revokeLease(lease); err != nil {
		t.Fatal(err)
	}
	if c := e.emu.Counts(); c.Revocations != 0 {
		t.Fatalf("an expired token was revoked upstream: %+v", c)
	}
}

func TestLease_RevokeFailureRetriedOnlyWhileTokenLives(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	lease := e.read("office")
	e.emu.SetFaults(accountstest.Faults{Status: 503})

	if err := e.revokeLease(lease); err == nil {
		t.Fatal("revocation reported success while the token is still live upstream")
	}
	// Vault retries; once the token has expired, the retry succeeds
	// without upstream.
	e.clock.Advance(time.Hour)
	if err := e.revokeLease(lease); err != nil {
		t.Fatalf("revocation of an expired token failed: %v", err)
	}
}

func TestLease_RetriedRevokeCountsOnce(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	a := e.read("office")
	b := e.read("office")
	tok := a.Data["access_token"].(string)

	e.emu.SetFaults(accountstest.Faults{Status: 503})
	if err := e.revokeLease(a); err != nil {
		t.Fatal(err) // not the last lease: no upstream call
	}
	if err := e.revokeLease(b); err == nil {
		t.Fatal("last-lease revocation succeeded during an outage")
	}
	e.emu.SetFaults(accountstest.Faults{})
	if err := e.revokeLease(b); err != nil {
		t.Fatal(err)
	}
	if e.emu.IsLive(tok) {
		t.Fatal("token live after the retried revocation")
	}
}

func TestLease_RenewCappedByToken(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	lease := e.read("office")

	e.clock.Advance(40 * time.Minute)
	resp, err := e.renewLease(lease, time.Hour)
	if err != nil || resp.IsError() {
		t.Fatalf("renew: %v %v", err, resp.Error())
	}
	if resp.Secret.TTL != 20*time.Minute-30*time.Second {
		t.Fatalf("renewed TTL %v, want the token's remaining 20m less 30s", resp.Secret.TTL)
	}

	e.clock.Advance(20 * time.Minute)
	resp, err = e.renewLease(lease, time.Hour)
	if got, msg := statusOf(resp, err); got != 400 || !strings.Contains(msg, "read creds/office again") {
		t.Fatalf("renew past the token's life: %d %q", got, msg)
	}
}

func TestLease_RenewAfterRevokeFails(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	lease := e.read("office")
	if err := e.revokeLease(lease); err != nil {
		t.Fatal(err)
	}
	resp, err := e.renewLease(lease, 0)
	if got, _ := statusOf(resp, err); got != 400 {
		t.Fatalf("renew of a revoked token answered %d", got)
	}
}

func TestLease_RevokedRefreshTokenNeedsReauthorization(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	rt := storedCred(t, e, "office").RefreshToken

	// Someone revokes the refresh token in the API console.
	if err := e.b.revokeUpstream(t.Context(), mustClient(t, e), rt, mustConfig(t, e), ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	msg := e.mustFail(400, logical.ReadOperation, "creds/office", nil)
	if !strings.Contains(msg, "needs re-authorization") || !strings.Contains(msg, "auth-code-url") {
		t.Fatalf("message %q", msg)
	}
	before := e.emu.Counts().TokenRequests
	e.mustFail(400, logical.ReadOperation, "creds/office", nil)
	if e.emu.Counts().TokenRequests != before {
		t.Fatal("a credential needing re-authorization still calls upstream")
	}

	// Authorizing again fixes it.
	e.newCred("office")
	e.read("office")
}

func TestLease_ConcurrentReadsOfColdCredentialMintOnce(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	e.clock.Advance(time.Hour) // the exchange's token is gone

	var wg sync.WaitGroup
	tokens := make(chan string, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.request(logical.ReadOperation, "creds/office", nil)
			if err != nil || resp.IsError() {
				t.Errorf("read: %v", err)
				return
			}
			tokens <- resp.Data["access_token"].(string)
		}()
	}
	wg.Wait()
	close(tokens)
	seen := map[string]bool{}
	for tok := range tokens {
		seen[tok] = true
	}
	if len(seen) != 1 {
		t.Fatalf("%d distinct tokens handed out, want 1", len(seen))
	}
	if c := e.emu.Counts(); c.Refreshes != 1 {
		t.Fatalf("refreshes = %d, want 1", c.Refreshes)
	}
	id := tokenID(firstKey(seen))
	tok, err := getToken(t.Context(), e.storage, "office", id)
	if err != nil || tok.Leases != 100 {
		t.Fatalf("lease count %v (err %v), want 100", tok, err)
	}
}

func TestLease_SweepForgetsDeadTokens(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	e.newCred("other")
	e.read("other") // a lease that Vault never revoked

	// Not yet: the tokens expired less than the grace ago.
	e.clock.Advance(time.Hour + 30*time.Minute)
	if err := e.b.periodic(t.Context(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.storage.List(t.Context(), tokenDirKey("office")); len(ids) != 1 {
		t.Fatalf("swept too early: %v", ids)
	}

	e.clock.Advance(2 * time.Hour)
	if err := e.b.periodic(t.Context(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{tokenDirKey("office"), tokenDirKey("other"), expiryPrefix} {
		keys, err := e.storage.List(t.Context(), dir)
		if err != nil || len(keys) != 0 {
			t.Fatalf("%s still holds %v (err %v)", dir, keys, err)
		}
	}
}

func TestSecrets_NeverInLogs(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, state := e.authorize("office", nil)
	code := queryOf(t, cb).Get("code")
	e.mustOK(logical.UpdateOperation, "creds/office", map[string]interface{}{"callback_url": cb})
	rt := storedCred(t, e, "office").RefreshToken
	lease := e.read("office")
	e.clock.Advance(56 * time.Minute)
	lease2 := e.read("office")
	_ = e.revokeLease(lease)
	_ = e.revokeLease(lease2)
	e.mustOK(logical.DeleteOperation, "creds/office", nil)

	logs := e.logs.String()
	if !strings.Contains(logs, "credential stored") {
		t.Fatalf("expected log lines, got %q", logs)
	}
	for what, secret := range map[string]string{
		"client secret": testClientSecret, "refresh token": rt, "code": code, "state": state,
		"access token": lease.Data["access_token"].(string),
		"second token": lease2.Data["access_token"].(string),
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", what)
		}
	}
}

func mustClient(t *testing.T, e *testEnv) *accounts.Client {
	t.Helper()
	c, _, err := e.b.accountsClient(t.Context(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustConfig(t *testing.T, e *testEnv) *configEntry {
	t.Helper()
	cfg, err := getConfig(t.Context(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

func TestLease_ShortLivedTokensAreLeasedOnce(t *testing.T) {
	e := getTestBackend(t, func(o *accountstest.Options) { o.AccessTokenTTL = 2 * time.Minute })
	e.configure(nil) // min_token_ttl 5m: longer than the tokens live
	e.newCred("office")

	resp := e.read("office")
	if resp.Secret.TTL != 90*time.Second {
		t.Fatalf("TTL %v, want the 2m token less the 30s margin", resp.Secret.TTL)
	}
	if c := e.emu.Counts(); c.Refreshes != 1 {
		t.Fatalf("refreshes = %d, want 1 per read", c.Refreshes)
	}
}

func TestLease_ReplacedUnleasedTokenRevokedUpstream(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office") // the exchange's token is current, with no lease
	first := storedCred(t, e, "office").CurrentTokenID
	firstTok, err := getToken(t.Context(), e.storage, "office", first)
	if err != nil || firstTok == nil {
		t.Fatal(err)
	}

	e.clock.Advance(56 * time.Minute)
	e.read("office")
	if e.emu.IsLive(firstTok.AccessToken) {
		t.Fatal("a replaced token nobody leased is still live upstream")
	}
}

func TestLease_ReadsDoNotWaitOnARevocation(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	old := e.read("office")
	e.clock.Advance(56 * time.Minute)
	e.read("office") // mints the token reads now share

	// The old token's last lease ends while the accounts server is slow.
	e.emu.SetFaults(accountstest.Faults{Latency: 2 * time.Second})
	done := make(chan error, 1)
	go func() { done <- e.revokeLease(old) }()
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	e.read("office")
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a read waited %v on another token's revocation", took)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.emu.IsLive(old.Data["access_token"].(string)) {
		t.Fatal("the old token is still live")
	}
}
