package backend

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// coldCred stores a credential and lets its first access token expire, so
// the next read must mint.
func coldCred(e *testEnv, name string) {
	e.t.Helper()
	e.newCred(name)
	e.clock.Advance(time.Hour)
}

func TestQuota_ThousandConcurrentColdReadsSendOneRequest(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	coldCred(e, "office")
	before := e.emu.Counts().TokenRequests

	var wg sync.WaitGroup
	var mu sync.Mutex
	tokens := map[string]int{}
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.request(logical.ReadOperation, "creds/office", nil)
			if got, msg := statusOf(resp, err); got != 200 {
				t.Errorf("read: %d %s", got, msg)
				return
			}
			mu.Lock()
			tokens[resp.Data["access_token"].(string)]++
			mu.Unlock()
		}()
	}
	wg.Wait()

	sent := e.emu.Counts().TokenRequests - before
	t.Logf("1000 concurrent cold reads: %d token request(s), %d distinct token(s)", sent, len(tokens))
	if sent != 1 || len(tokens) != 1 {
		t.Fatalf("token requests = %d, distinct tokens = %d; want 1 and 1", sent, len(tokens))
	}
	for tok, n := range tokens {
		stored, err := getToken(t.Context(), e.storage, "office", tokenID(tok))
		if err != nil || stored.Leases != n {
			t.Fatalf("lease count %v, want %d (err %v)", stored, n, err)
		}
	}
}

func TestQuota_TenThousandReadsOverAnHour(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	coldCred(e, "office")
	before := e.emu.Counts().TokenRequests

	// 10,000 reads spread over one simulated hour: one every 360ms.
	for range 10000 {
		e.clock.Advance(360 * time.Millisecond)
		resp, err := e.request(logical.ReadOperation, "creds/office", nil)
		if got, msg := statusOf(resp, err); got != 200 {
			t.Fatalf("read: %d %s", got, msg)
		}
	}
	sent := e.emu.Counts().TokenRequests - before
	t.Logf("10000 reads over a simulated hour: %d token request(s)", sent)
	if sent > 2 {
		t.Fatalf("token requests = %d, want at most 2", sent)
	}
}

func TestQuota_ThrottleAnswerStopsUpstreamForTheWindow(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	coldCred(e, "office")
	e.emu.SetFaults(accountstest.Faults{Throttle: true, Localized: true})

	msg := e.mustFail(429, logical.ReadOperation, "creds/office", nil)
	if !strings.Contains(msg, "throttl") {
		t.Fatalf("message %q", msg)
	}
	e.emu.SetFaults(accountstest.Faults{})
	sent := e.emu.Counts().TokenRequests

	// Nothing goes upstream for the rest of the window, however often
	// applications ask.
	for i := 0; i < 20; i++ {
		e.clock.Advance(29 * time.Second)
		msg = e.mustFail(429, logical.ReadOperation, "creds/office", nil)
	}
	if !strings.Contains(msg, "retry after") {
		t.Fatalf("message %q does not say when to retry", msg)
	}
	if got := e.emu.Counts().TokenRequests; got != sent {
		t.Fatalf("%d requests sent during the backoff", got-sent)
	}

	e.clock.Advance(time.Minute) // 10m40s after the throttle answer
	e.read("office")
	if got := e.emu.Counts().TokenRequests; got != sent+1 {
		t.Fatalf("after the window: %d requests, want 1", got-sent)
	}
}

func TestQuota_MintLimitEnforcedBeforeUpstream(t *testing.T) {
	e := getTestBackend(t)
	e.configure(map[string]interface{}{"mint_limit": 4})
	e.newCred("office") // the exchange is mint 1

	// Revoking a token's last lease retires it, so each read mints.
	lease := e.read("office")
	for i := 0; i < 3; i++ {
		if err := e.revokeLease(lease); err != nil {
			t.Fatal(err)
		}
		lease = e.read("office")
	}
	if err := e.revokeLease(lease); err != nil {
		t.Fatal(err)
	}
	sent := e.emu.Counts().TokenRequests
	msg := e.mustFail(429, logical.ReadOperation, "creds/office", nil)
	if !strings.Contains(msg, "mint_limit") || !strings.Contains(msg, "retry after") {
		t.Fatalf("message %q", msg)
	}
	if got := e.emu.Counts().TokenRequests; got != sent {
		t.Fatal("the guard let a request through that the provider would refuse")
	}
	if n := e.emu.Counts().Errors["Access Denied"]; n != 0 {
		t.Fatalf("the emulator throttled %d times", n)
	}

	e.clock.Advance(10 * time.Minute)
	e.read("office")
}

func TestQuota_ValidTokenServedWhenQuotaSpent(t *testing.T) {
	e := getTestBackend(t)
	e.configure(map[string]interface{}{"mint_limit": 1, "mint_window": "1h"})
	e.newCred("office") // mint 1 of 1

	// Under min_token_ttl left, but the quota allows no mint.
	e.clock.Advance(57 * time.Minute)
	resp := e.read("office")
	if resp.Secret.TTL != 2*time.Minute+30*time.Second {
		t.Fatalf("TTL %v, want the token's remaining 3m less 30s", resp.Secret.TTL)
	}
	if len(resp.Warnings) == 0 {
		t.Fatal("no warning about the short lease")
	}
	if c := e.emu.Counts(); c.Refreshes != 0 {
		t.Fatalf("refreshes = %d", c.Refreshes)
	}
}

func TestQuota_LiveTokenCapNeverEvictsALeasedToken(t *testing.T) {
	e := getTestBackend(t, func(o *accountstest.Options) { o.MaxLiveTokens = 2 })
	e.configure(map[string]interface{}{
		"max_live_tokens": 2, "min_token_ttl": "50m", "mint_limit": 100,
	})
	e.newCred("office")
	leases := []*logical.Response{e.read("office")}
	for i := 0; i < 4; i++ {
		e.clock.Advance(11 * time.Minute)
		leases = append(leases, e.read("office"))
	}
	// Every token under a lease still works upstream.
	for i, l := range leases {
		exp, _ := time.Parse(time.RFC3339, l.Data["expires_at"].(string))
		if e.clock.Now().Before(exp) && !e.emu.IsLive(l.Data["access_token"].(string)) {
			t.Fatalf("lease %d's token was evicted upstream", i)
		}
	}
	rt := storedCred(t, e, "office").RefreshToken
	if n := e.emu.LiveAccessTokens(rt); n > 2 {
		t.Fatalf("%d live tokens upstream, cap 2", n)
	}
}

func TestQuota_BackoffGrowsWithJitter(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		d := backoffDelay(n)
		full := backoffBase << (n - 1)
		if full > backoffCap {
			full = backoffCap
		}
		if d < full/2 || d > full {
			t.Fatalf("failure %d: delay %v outside [%v, %v]", n, d, full/2, full)
		}
		if full/2 > prev {
			prev = full / 2
		}
	}
}

func TestQuota_OtherCredentialsDoNotWait(t *testing.T) {
	slow := accountstest.NewServer(accountstest.Options{})
	defer slow.Close()
	slow.AddClient(accountstest.Client{ID: testClientID, Secret: testClientSecret})
	e := getTestBackend(t)
	e.configure(map[string]interface{}{"allowed_accounts_servers": e.emu.URL + "," + slow.URL})

	rt := slow.IssueRefreshToken(testClientID, testUser, nil)
	e.mustOK(logical.UpdateOperation, "creds/slow", map[string]interface{}{
		"refresh_token": rt, "accounts_server": slow.URL,
	})
	coldCred(e, "fast")
	slow.SetFaults(accountstest.Faults{Latency: 2 * time.Second})

	done := make(chan struct{})
	go func() {
		defer close(done)
		e.request(logical.ReadOperation, "creds/slow", nil)
	}()
	time.Sleep(200 * time.Millisecond) // let the slow mint get under way
	start := time.Now()
	e.read("fast")
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a read of another credential waited %v on a slow mint", took)
	}
	<-done
}

func TestQuota_OverwritesNeverHitTheTwentyTokenRule(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	for i := 0; i < 25; i++ {
		e.newCred("office")
		e.clock.Advance(time.Minute) // stay under the grant-code throttle
	}
	if n := e.emu.RefreshTokens(testClientID, testUser); n != 1 {
		t.Fatalf("the user holds %d refresh tokens, want 1", n)
	}
	e.read("office")
}

func TestStatus_ShowsQuotaAndTokensWithoutSecrets(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	lease := e.read("office")
	e.read("office")

	resp := e.mustOK(logical.ReadOperation, "creds/office/status", nil)
	d := resp.Data
	if d["mints_in_window"] != 1 || d["mint_limit"] != 10 || d["needs_reauth"] != false ||
		d["source"] != "authorization_code" {
		t.Fatalf("status %v", d)
	}
	toks := d["live_tokens"].([]map[string]interface{})
	if len(toks) != 1 || toks[0]["leases"] != 2 || toks[0]["current"] != true {
		t.Fatalf("live_tokens %v", toks)
	}
	rt := storedCred(t, e, "office").RefreshToken
	dump := strings.Join(flatten(d), " ")
	for _, secret := range []string{rt, lease.Data["access_token"].(string), testClientSecret} {
		if strings.Contains(dump, secret) {
			t.Fatal("status shows a secret")
		}
	}
}

func flatten(m map[string]interface{}) []string {
	var out []string
	for k, v := range m {
		out = append(out, k)
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []string:
			out = append(out, x...)
		case []map[string]interface{}:
			for _, mm := range x {
				out = append(out, flatten(mm)...)
			}
		}
	}
	return out
}
