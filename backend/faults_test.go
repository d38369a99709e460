package backend

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// TestProviderFaults drives each fault the emulator can inject through a
// read that must mint, and shows what the caller gets, that the refresh
// token survives, and that the engine then holds back instead of retrying.
func TestProviderFaults(t *testing.T) {
	cases := map[string]struct {
		fault  accountstest.Faults
		status int
		says   string
	}{
		"latency past the timeout":  {accountstest.Faults{Latency: 3 * time.Second}, 504, "request_timeout"},
		"HTTP 502 page":             {accountstest.Faults{Status: 502}, 502, "unavailable"},
		"HTTP 503 page":             {accountstest.Faults{Status: 503}, 502, "unavailable"},
		"connection reset":          {accountstest.Faults{Reset: true}, 502, "unavailable"},
		"malformed JSON":            {accountstest.Faults{Malformed: true}, 502, "neither a token nor a known error"},
		"HTML error page, HTTP 200": {accountstest.Faults{HTML: true}, 502, "neither a token nor a known error"},
		"Access Denied in HTTP 200": {accountstest.Faults{Throttle: true}, 429, "throttling"},
		"localized Access Denied":   {accountstest.Faults{Throttle: true, Localized: true}, 429, "throttling"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := getTestBackend(t)
			e.configure(map[string]interface{}{"request_timeout": 1})
			coldCred(e, "office")
			rt := storedCred(t, e, "office").RefreshToken
			e.emu.SetFaults(tc.fault)
			sent := e.emu.Counts().TokenRequests

			msg := e.mustFail(tc.status, logical.ReadOperation, "creds/office", nil)
			if !strings.Contains(msg, tc.says) {
				t.Fatalf("message %q does not say %q", msg, tc.says)
			}
			// Applications keep asking; the engine holds back.
			for range 5 {
				e.clock.Advance(100 * time.Millisecond)
				e.mustFail(tc.status, logical.ReadOperation, "creds/office", nil)
			}
			requests := e.emu.Counts().TokenRequests - sent
			if requests != 1 {
				t.Fatalf("%d upstream requests for 6 reads, want 1", requests)
			}
			if storedCred(t, e, "office").RefreshToken != rt || !e.emu.IsLive(rt) {
				t.Fatal("the refresh token did not survive")
			}

			// Once the fault clears and the backoff passes, reads work.
			e.emu.SetFaults(accountstest.Faults{})
			e.clock.Advance(11 * time.Minute)
			e.read("office")
			t.Logf("caller got %d %q; upstream requests 1; refresh token intact; recovered",
				tc.status, msg)
		})
	}
}

// TestProviderFaults_ThrottleMidBurst has the provider start throttling
// between two bursts of concurrent reads of many credentials, the second
// of which needs new tokens.
func TestProviderFaults_ThrottleMidBurst(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		e.newCred(n)
		e.clock.Advance(30 * time.Second) // under the grant-code throttle
	}

	burst := func() map[int]int {
		var wg sync.WaitGroup
		codes := make(chan int, 200)
		for i := range 200 {
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				resp, err := e.request(logical.ReadOperation, "creds/"+name, nil)
				code, _ := statusOf(resp, err)
				codes <- code
			}(names[i%len(names)])
		}
		wg.Wait()
		close(codes)
		counts := map[int]int{}
		for c := range codes {
			counts[c]++
		}
		return counts
	}

	e.clock.Advance(time.Hour)
	first := burst()
	e.clock.Advance(time.Hour)
	e.emu.SetFaults(accountstest.Faults{Throttle: true})
	second := burst()

	c := e.emu.Counts()
	if first[200] != 200 || second[429] != 200 {
		t.Fatalf("answers %v then %v, want 200 x200 then 429 x200", first, second)
	}
	// 4 exchanges, 4 mints, 4 throttled attempts: one per credential each.
	if c.TokenRequests != 12 {
		t.Fatalf("%d token requests, want 12", c.TokenRequests)
	}
	t.Logf("400 reads of 4 credentials, throttled between bursts: answers %v then %v, "+
		"token requests %d", first, second, c.TokenRequests)
}

// TestProviderFaults_ValidTokenServedThroughOutage: a read that wants a
// fresh token during an outage gets the current one while it still works.
func TestProviderFaults_ValidTokenServedThroughOutage(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	first := e.read("office")
	e.clock.Advance(57 * time.Minute) // 3 minutes left: below min_token_ttl
	e.emu.SetFaults(accountstest.Faults{Status: 503})

	resp := e.read("office")
	if resp.Data["access_token"] != first.Data["access_token"] {
		t.Fatal("a still valid token was not served during the outage")
	}
	if resp.Secret.TTL != 2*time.Minute+30*time.Second || len(resp.Warnings) == 0 {
		t.Fatalf("TTL %v warnings %v", resp.Secret.TTL, resp.Warnings)
	}
}
