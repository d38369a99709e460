package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestAuthCodeURL_Parameters(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)

	resp := e.mustOK(logical.UpdateOperation, "auth-code-url",
		map[string]interface{}{"name": "office"})
	u := resp.Data["url"].(string)
	if !strings.HasPrefix(u, e.emu.URL+"/clientoauth/v2/10023122998/auth?") {
		t.Fatalf("url %s is not the portal auth endpoint", u)
	}
	q := queryOf(t, u)
	want := map[string]string{
		"client_id":     testClientID,
		"response_type": "code",
		"redirect_uri":  testRedirect,
		"access_type":   "offline",
		"prompt":        "consent",
		"scope":         "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoCRM.users.ALL,ZohoCRM.org.ALL",
		"state":         resp.Data["state"].(string),
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("client_secret") || strings.Contains(u, testClientSecret) {
		t.Fatal("the URL carries the client secret")
	}
	if resp.Data["expires_in"] != int64(600) {
		t.Errorf("expires_in = %v, want 600", resp.Data["expires_in"])
	}
}

func TestAuthCodeURL_StateStoredOnlyHashed(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)

	resp := e.mustOK(logical.UpdateOperation, "auth-code-url",
		map[string]interface{}{"name": "office"})
	state := resp.Data["state"].(string)
	if len(state) < 40 {
		t.Fatalf("state %q is too short to be unguessable", state)
	}
	for k, v := range e.storageDump() {
		if strings.Contains(k, state) || strings.Contains(v, state) {
			t.Fatalf("storage %s holds the state in clear", k)
		}
	}
	if _, ok := e.storageDump()[stateKey(state)]; !ok {
		t.Fatal("state hash not stored")
	}
}

func TestAuthCodeURL_Options(t *testing.T) {
	e := getTestBackend(t)
	e.configure(map[string]interface{}{
		"extra_redirect_uris": "http://127.0.0.1:8250/callback",
	})

	resp := e.mustOK(logical.UpdateOperation, "auth-code-url", map[string]interface{}{
		"name": "office", "scopes": "ZohoCRM.modules.READ", "redirect_uri": "http://127.0.0.1:8250/callback",
		"access_type": "online", "prompt": "none",
	})
	q := queryOf(t, resp.Data["url"].(string))
	if q.Get("scope") != "ZohoCRM.modules.READ" || q.Get("access_type") != "online" ||
		q.Has("prompt") || q.Get("redirect_uri") != "http://127.0.0.1:8250/callback" {
		t.Fatalf("query %v", q)
	}
	if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "refresh token") {
		t.Fatalf("no warning about refresh tokens: %v", resp.Warnings)
	}
}

func TestAuthCodeURL_StateIsSingleUse(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, _ := e.authorize("office", nil)

	e.mustOK(logical.UpdateOperation, "creds/office", map[string]interface{}{"callback_url": cb})
	msg := e.mustFail(400, logical.UpdateOperation, "creds/office",
		map[string]interface{}{"callback_url": cb})
	if !strings.Contains(msg, "state is unknown or was already used") {
		t.Fatalf("reused state: %q", msg)
	}
	if got := e.emu.Counts().CodeExchanges; got != 1 {
		t.Fatalf("code exchanges = %d, want 1 (the reuse must not reach upstream)", got)
	}
}

func TestAuthCodeURL_StateExpires(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, _ := e.authorize("office", map[string]interface{}{"ttl": "60s"})

	e.clock.Advance(61 * time.Second)
	msg := e.mustFail(400, logical.UpdateOperation, "creds/office",
		map[string]interface{}{"callback_url": cb})
	if !strings.Contains(msg, "expired") {
		t.Fatalf("expired state: %q", msg)
	}
	if got := e.emu.Counts().TokenRequests; got != 0 {
		t.Fatalf("token requests = %d, want 0", got)
	}
}

func TestAuthCodeURL_StateBoundToName(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, _ := e.authorize("office", nil)

	msg := e.mustFail(400, logical.UpdateOperation, "creds/other",
		map[string]interface{}{"callback_url": cb})
	if !strings.Contains(msg, `issued for credential "office"`) {
		t.Fatalf("foreign state: %q", msg)
	}
	// The state still works for the credential it was issued for.
	e.mustOK(logical.UpdateOperation, "creds/office", map[string]interface{}{"callback_url": cb})
}

func TestPeriodic_SweepsExpiredStates(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.mustOK(logical.UpdateOperation, "auth-code-url", map[string]interface{}{"name": "a", "ttl": "60s"})
	e.mustOK(logical.UpdateOperation, "auth-code-url", map[string]interface{}{"name": "b", "ttl": "1h"})

	e.clock.Advance(2 * time.Minute)
	if err := e.b.periodic(t.Context(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	keys, err := e.storage.List(t.Context(), statePrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d states left, want 1", len(keys))
	}
}
