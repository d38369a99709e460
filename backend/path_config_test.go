package backend

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestConfig_DefaultsAreChabadUnityCRM(t *testing.T) {
	e := getTestBackend(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"client_id": testClientID, "client_secret": testClientSecret,
	})

	resp := e.mustOK(logical.ReadOperation, "config", nil)
	want := map[string]interface{}{
		"accounts_url": "https://crm.chabad.comeunity.me",
		"portal_id":    "10023122998",
		"auth_url":     "https://crm.chabad.comeunity.me/clientoauth/v2/10023122998/auth",
		"token_url":    "https://crm.chabad.comeunity.me/clientoauth/v2/10023122998/token",
		"revoke_url":   "https://crm.chabad.comeunity.me/clientoauth/v2/10023122998/token/revoke",
	}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("%s = %v, want %v", k, resp.Data[k], v)
		}
	}
	if got := strings.Join(resp.Data["scopes"].([]string), ","); got !=
		"ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoCRM.users.ALL,ZohoCRM.org.ALL" {
		t.Errorf("scopes = %s", got)
	}
	if got := resp.Data["allowed_accounts_servers"].([]string); len(got) != 1 ||
		got[0] != "https://crm.chabad.comeunity.me" {
		t.Errorf("allowed_accounts_servers = %v", got)
	}
	if resp.Data["min_token_ttl"] != int64(300) || resp.Data["lease_safety_margin"] != int64(30) {
		t.Errorf("min_token_ttl/lease_safety_margin = %v/%v",
			resp.Data["min_token_ttl"], resp.Data["lease_safety_margin"])
	}
}

func TestConfig_SecretNeverReadBack(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)

	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if _, ok := resp.Data["client_secret"]; ok {
		t.Fatal("config read returned client_secret")
	}
	for k, v := range resp.Data {
		if strings.Contains(fmtValue(v), testClientSecret) {
			t.Fatalf("config read leaks the secret in %s", k)
		}
	}
}

func TestConfig_UpdateKeepsOtherFields(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"scopes": "ZohoCRM.modules.READ",
	})

	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["client_id"] != testClientID || resp.Data["redirect_uri"] != testRedirect {
		t.Fatalf("update lost fields: %v", resp.Data)
	}
	cfg, err := getConfig(t.Context(), e.storage)
	if err != nil || cfg.ClientSecret != testClientSecret {
		t.Fatalf("update lost the client secret (err %v)", err)
	}
}

func TestConfig_DataCenterPresets(t *testing.T) {
	e := getTestBackend(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"client_id": testClientID, "client_secret": testClientSecret,
		"data_center": "eu",
	})

	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["token_url"] != "https://accounts.zoho.eu/oauth/v2/token" ||
		resp.Data["portal_id"] != "" || resp.Data["data_center"] != "eu" {
		t.Fatalf("eu preset: %v", resp.Data)
	}
}

func TestConfig_PortalIDEmptyGivesStandardPaths(t *testing.T) {
	e := getTestBackend(t)
	e.configure(map[string]interface{}{"portal_id": ""})

	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["token_url"] != e.emu.URL+"/oauth/v2/token" {
		t.Fatalf("token_url = %v", resp.Data["token_url"])
	}
}

func TestConfig_Validation(t *testing.T) {
	base := func() map[string]interface{} {
		return map[string]interface{}{
			"client_id": testClientID, "client_secret": testClientSecret,
		}
	}
	cases := map[string]struct {
		data  map[string]interface{}
		field string
	}{
		"no client id":        {map[string]interface{}{"client_secret": "x"}, "client_id"},
		"no client secret":    {map[string]interface{}{"client_id": "x"}, "client_secret"},
		"http token url":      {map[string]interface{}{"token_url": "http://accounts.example.org/token"}, "token_url"},
		"http revoke url":     {map[string]interface{}{"revoke_url": "http://accounts.example.org/r"}, "revoke_url"},
		"http accounts url":   {map[string]interface{}{"accounts_url": "http://accounts.zoho.com"}, "accounts_url"},
		"relative token url":  {map[string]interface{}{"token_url": "/oauth/v2/token"}, "token_url"},
		"unknown dc":          {map[string]interface{}{"data_center": "mars"}, "data_center"},
		"dc and accounts url": {map[string]interface{}{"data_center": "eu", "accounts_url": "https://a.example"}, "data_center"},
		"bad portal":          {map[string]interface{}{"portal_id": "10023/../x"}, "portal_id"},
		"origin with path":    {map[string]interface{}{"allowed_accounts_servers": "https://accounts.zoho.eu/oauth"}, "allowed_accounts_servers"},
		"http origin":         {map[string]interface{}{"allowed_accounts_servers": "http://accounts.zoho.eu"}, "allowed_accounts_servers"},
		"bad redirect":        {map[string]interface{}{"redirect_uri": "not a url"}, "redirect_uri"},
		"bad extra redirect":  {map[string]interface{}{"extra_redirect_uris": "ftp://x"}, "extra_redirect_uris"},
		"empty scopes":        {map[string]interface{}{"scopes": ""}, "scopes"},
		"timeout too long":    {map[string]interface{}{"request_timeout": "1h"}, "request_timeout"},
		"min ttl too long":    {map[string]interface{}{"min_token_ttl": "2h"}, "min_token_ttl"},
		"margin above min":    {map[string]interface{}{"lease_safety_margin": "6m"}, "lease_safety_margin"},
		"user info in url":    {map[string]interface{}{"token_url": "https://u:p@a.example/token"}, "token_url"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := getTestBackend(t)
			data := tc.data
			if _, ok := data["client_id"]; !ok && name != "no client id" {
				for k, v := range base() {
					if _, set := data[k]; !set {
						data[k] = v
					}
				}
			}
			msg := e.mustFail(400, logical.UpdateOperation, "config", data)
			if !strings.Contains(msg, tc.field) {
				t.Fatalf("message %q does not name %s", msg, tc.field)
			}
			if strings.Contains(msg, testClientSecret) {
				t.Fatalf("message leaks the client secret: %q", msg)
			}
			if dump := e.storageDump(); len(dump) != 0 {
				t.Fatalf("a rejected write stored %v", dump)
			}
		})
	}
}

func TestConfig_ReportsEveryBadFieldAtOnce(t *testing.T) {
	e := getTestBackend(t)
	msg := e.mustFail(400, logical.UpdateOperation, "config", map[string]interface{}{
		"token_url":  "http://a.example/token",
		"revoke_url": "http://a.example/revoke",
	})
	for _, f := range []string{"client_id", "client_secret", "token_url", "revoke_url"} {
		if !strings.Contains(msg, f) {
			t.Errorf("message %q does not name %s", msg, f)
		}
	}
}

func TestConfig_LoopbackHTTPAccepted(t *testing.T) {
	e := getTestBackend(t)
	e.configure(map[string]interface{}{
		"token_url": "http://127.0.0.1:1/token", "revoke_url": "http://localhost:1/revoke",
	})
}

func TestConfig_Delete(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.mustOK(logical.DeleteOperation, "config", nil)

	if resp := e.mustOK(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatalf("config still readable: %v", resp.Data)
	}
	msg := e.mustFail(400, logical.UpdateOperation, "auth-code-url",
		map[string]interface{}{"name": "a"})
	if !strings.Contains(msg, "write config") {
		t.Fatalf("unconfigured message %q", msg)
	}
}

func TestConfig_SealWrapped(t *testing.T) {
	e := getTestBackend(t)
	wrapped := e.b.PathsSpecial.SealWrapStorage
	for _, p := range []string{"config", "creds/", "tokens/", "state/", "wal/"} {
		found := false
		for _, w := range wrapped {
			found = found || w == p
		}
		if !found {
			t.Errorf("%s is not seal-wrapped", p)
		}
	}
}

func fmtValue(v interface{}) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return strings.Join(x, ",")
	}
	return ""
}
