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
