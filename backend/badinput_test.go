package backend

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// badInput is one malformed request: what is sent, and the field the
// answer must name.
type badInput struct {
	path       string
	data       map[string]interface{}
	field      string
	unconfigd  bool                                    // run before any config
	setup      func(e *testEnv) map[string]interface{} // returns data additions
	hostileEmu bool                                    // the redirect names a hostile origin
}

func creds(data map[string]interface{}, field string) badInput {
	return badInput{path: "creds/office", data: data, field: field}
}

func cfg(data map[string]interface{}, field string) badInput {
	return badInput{path: "config", data: data, field: field, unconfigd: true}
}

func acu(data map[string]interface{}, field string) badInput {
	return badInput{path: "auth-code-url", data: data, field: field}
}

type m = map[string]interface{}

var huge = strings.Repeat("x", 100_000)

// badInputs are the malformed requests every path must refuse with a 400
// naming the field, leaving storage as it was and sending nothing upstream.
var badInputs = map[string]badInput{
	"config/no client id":          cfg(m{"client_secret": "x"}, "client_id"),
	"config/no client secret":      cfg(m{"client_id": "x"}, "client_secret"),
	"config/http token url":        cfg(m{"token_url": "http://accounts.example.org/token"}, "token_url"),
	"config/http revoke url":       cfg(m{"revoke_url": "http://accounts.example.org/r"}, "revoke_url"),
	"config/http accounts url":     cfg(m{"accounts_url": "http://accounts.zoho.com"}, "accounts_url"),
	"config/http private address":  cfg(m{"accounts_url": "http://10.0.0.1"}, "accounts_url"),
	"config/relative token url":    cfg(m{"token_url": "/oauth/v2/token"}, "token_url"),
	"config/javascript auth url":   cfg(m{"auth_url": "javascript:alert(1)"}, "auth_url"),
	"config/unknown data center":   cfg(m{"data_center": "mars"}, "data_center"),
	"config/dc and accounts url":   cfg(m{"data_center": "eu", "accounts_url": "https://a.example"}, "data_center"),
	"config/bad portal":            cfg(m{"portal_id": "10023/../x"}, "portal_id"),
	"config/origin with path":      cfg(m{"allowed_accounts_servers": "https://accounts.zoho.eu/oauth"}, "allowed_accounts_servers"),
	"config/http origin":           cfg(m{"allowed_accounts_servers": "http://accounts.zoho.eu"}, "allowed_accounts_servers"),
	"config/bad redirect":          cfg(m{"redirect_uri": "not a url"}, "redirect_uri"),
	"config/bad extra redirect":    cfg(m{"extra_redirect_uris": "ftp://x"}, "extra_redirect_uris"),
	"config/empty scopes":          cfg(m{"scopes": ""}, "scopes"),
	"config/timeout too long":      cfg(m{"request_timeout": "1h"}, "request_timeout"),
	"config/min ttl too long":      cfg(m{"min_token_ttl": "2h"}, "min_token_ttl"),
	"config/margin above min ttl":  cfg(m{"lease_safety_margin": "6m"}, "lease_safety_margin"),
	"config/user info in url":      cfg(m{"token_url": "https://u:p@a.example/token"}, "token_url"),
	"config/huge client id":        cfg(m{"client_id": huge}, "client_id"),
	"config/huge client secret":    cfg(m{"client_secret": huge}, "client_secret"),
	"config/mint limit zero":       cfg(m{"mint_limit": 0}, "mint_limit"),
	"config/mint limit huge":       cfg(m{"mint_limit": 1000}, "mint_limit"),
	"config/mint window too short": cfg(m{"mint_window": "10s"}, "mint_window"),
	"config/too many live tokens":  cfg(m{"max_live_tokens": 31}, "max_live_tokens"),

	"config/accounts url with path":   cfg(m{"accounts_url": "https://a.example/path?x=1"}, "accounts_url"),
	"config/token url with fragment":  cfg(m{"token_url": "https://a.example/token#x"}, "token_url"),
	"config/secret of the wrong type": cfg(m{"client_secret": []interface{}{"LEAKSECRET77"}}, "client_secret"),
	"config/too many scopes":          cfg(m{"scopes": strings.Repeat("ZohoCRM.a,", 100)}, "scopes"),
	"config/huge scope":               cfg(m{"scopes": huge}, "scopes"),
	"config/huge extra redirect":      cfg(m{"extra_redirect_uris": "https://a.example/" + huge}, "extra_redirect_uris"),

	"auth-code-url/name with dots": acu(m{"name": "a..b"}, "name"),
	"auth-code-url/huge scope":     acu(m{"name": "a", "scopes": huge}, "scopes"),
	"creds/code of the wrong type": creds(m{"code": map[string]interface{}{"x": "LEAKSECRET77"}, "self_client": true}, "code"),
	"creds/refresh token list":     creds(m{"refresh_token": []interface{}{"LEAKSECRET77"}}, "refresh_token"),

	"auth-code-url/no name":          acu(m{}, "name"),
	"auth-code-url/bad name":         acu(m{"name": "../x"}, "name"),
	"auth-code-url/huge name":        acu(m{"name": huge}, "name"),
	"auth-code-url/unregistered uri": acu(m{"name": "a", "redirect_uri": "https://evil.example/cb"}, "redirect_uri"),
	"auth-code-url/bad access type":  acu(m{"name": "a", "access_type": "forever"}, "access_type"),
	"auth-code-url/bad prompt":       acu(m{"name": "a", "prompt": "login"}, "prompt"),
	"auth-code-url/ttl too long":     acu(m{"name": "a", "ttl": "2h"}, "ttl"),
	"auth-code-url/ttl zero":         acu(m{"name": "a", "ttl": 0}, "ttl"),
	"auth-code-url/empty scopes":     acu(m{"name": "a", "scopes": ","}, "scopes"),

	"creds/nothing":                creds(m{}, "callback_url"),
	"creds/code without state":     creds(m{"code": "1000.x"}, "state"),
	"creds/code and refresh token": creds(m{"code": "1000.x", "state": "s", "refresh_token": "r"}, "only one"),
	"creds/callback and code":      creds(m{"callback_url": "https://a/cb?code=1&state=2", "code": "c"}, "only one"),
	"creds/callback and state":     creds(m{"callback_url": "https://a/cb?code=1&state=2", "state": "s"}, "state"),
	"creds/callback self client":   creds(m{"callback_url": "https://a/cb?code=1&state=2", "self_client": true}, "self_client"),
	"creds/self client with state": creds(m{"code": "c", "self_client": true, "state": "s"}, "state"),
	"creds/refresh with state":     creds(m{"refresh_token": "r", "state": "s"}, "refresh_token"),
	"creds/callback not a url":     creds(m{"callback_url": "code=1&state=2"}, "callback_url"),
	"creds/callback without code":  creds(m{"callback_url": "https://a/cb?state=2"}, "code"),
	"creds/callback without state": creds(m{"callback_url": "https://a/cb?code=2"}, "state"),
	"creds/callback with error":    creds(m{"callback_url": "https://a/cb?error=access_denied&state=2"}, "access_denied"),
	"creds/forged state":           creds(m{"code": "c", "state": "forged"}, "state"),
	"creds/bad accounts server":    creds(m{"code": "c", "self_client": true, "accounts_server": "ftp://x"}, "accounts_server"),
	"creds/huge code":              creds(m{"code": huge, "self_client": true}, "code"),
	"creds/huge callback":          creds(m{"callback_url": "https://a/cb?code=" + huge}, "callback_url"),
	"creds/huge refresh token":     creds(m{"refresh_token": huge}, "refresh_token"),
	"creds/reused state": {path: "creds/office", field: "state", setup: func(e *testEnv) m {
		cb, _ := e.authorize("office", nil)
		e.mustOK(logical.UpdateOperation, "creds/office", m{"callback_url": cb})
		return m{"callback_url": cb}
	}},
	"creds/expired state": {path: "creds/office", field: "state", setup: func(e *testEnv) m {
		cb, _ := e.authorize("office", m{"ttl": "60s"})
		e.clock.Advance(61 * time.Second)
		return m{"callback_url": cb}
	}},
	"creds/state of another name": {path: "creds/office", field: "state", setup: func(e *testEnv) m {
		cb, _ := e.authorize("other", nil)
		return m{"callback_url": cb}
	}},
	"creds/foreign accounts server": {path: "creds/office", field: "allowed_accounts_servers",
		hostileEmu: true, setup: func(e *testEnv) m {
			cb, _ := e.authorize("office", nil)
			return m{"callback_url": cb}
		}},
	"creds/unlisted accounts server field": {path: "creds/office", field: "allowed_accounts_servers",
		data: m{"code": "1000.c", "self_client": true, "accounts_server": "https://accounts.zoho.eu"}},

	"self/no soid":      {path: "self/reports", data: m{}, field: "soid"},
	"self/bad soid":     {path: "self/reports", data: m{"soid": "10023122998"}, field: "soid"},
	"self/huge soid":    {path: "self/reports", data: m{"soid": "ZohoCRM." + huge}, field: "soid"},
	"self/empty scopes": {path: "self/reports", data: m{"soid": testSoid, "scopes": " , "}, field: "scopes"},
}

func TestBadInput(t *testing.T) {
	var hostileHits atomic.Int32
	hostile := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		hostileHits.Add(1)
	}))
	defer hostile.Close()

	held := 0
	for name, tc := range badInputs {
		t.Run(name, func(t *testing.T) {
			var e *testEnv
			if tc.hostileEmu {
				e = getTestBackend(t, func(o *accountstest.Options) { o.AccountsServer = hostile.URL })
			} else {
				e = getTestBackend(t)
			}
			data := m{}
			if tc.unconfigd {
				if tc.field != "client_id" && tc.field != "client_secret" {
					data["client_id"], data["client_secret"] = testClientID, testClientSecret
				}
			} else {
				e.configure(nil)
			}
			if tc.setup != nil {
				for k, v := range tc.setup(e) {
					data[k] = v
				}
			}
			for k, v := range tc.data {
				data[k] = v
			}

			before := e.storageDump()
			sent := e.emu.Counts().TokenRequests
			resp, err := e.request(logical.UpdateOperation, tc.path, data)
			status, msg := statusOf(resp, err)

			if status != 400 {
				t.Fatalf("status %d (%s), want 400", status, msg)
			}
			if !strings.Contains(msg, tc.field) {
				t.Fatalf("message %q does not name %s", msg, tc.field)
			}
			if strings.Contains(msg, testClientSecret) || strings.Contains(msg, huge) ||
				strings.Contains(msg, "LEAKSECRET77") {
				t.Fatalf("message echoes a secret or the whole value: %.200q", msg)
			}
			after := e.storageDump()
			if len(after) != len(before) {
				t.Fatalf("storage changed: %d entries before, %d after", len(before), len(after))
			}
			for k, v := range before {
				if after[k] != v {
					t.Fatalf("storage entry %s changed", k)
				}
			}
			if got := e.emu.Counts().TokenRequests - sent; got != 0 {
				t.Fatalf("%d requests reached the accounts server", got)
			}
			held++
			t.Logf("refused with 400 naming %q, storage unchanged, nothing sent", tc.field)
		})
	}
	if hostileHits.Load() != 0 {
		t.Fatalf("the hostile accounts server got %d requests", hostileHits.Load())
	}
	t.Logf("bad input: %d malformed requests tried, %d held", len(badInputs), held)
	if held != len(badInputs) {
		t.Fail()
	}
}
