package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

const testSoid = "ZohoCRM.10023122998"

func TestSelf_ClientCredentialsFlow(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)

	w := e.mustOK(logical.UpdateOperation, "self/reports", map[string]interface{}{
		"soid": testSoid, "scopes": "ZohoCRM.modules.READ",
	})
	if w.Data["source"] != "client_credentials" || w.Data["soid"] != testSoid {
		t.Fatalf("write answer %v", w.Data)
	}

	a := e.readPath("self/reports")
	b := e.readPath("self/reports")
	tok := a.Data["access_token"].(string)
	if b.Data["access_token"] != tok {
		t.Fatal("reads of a Self Client credential do not share the token")
	}
	if got := apiStatus(t, e.emu.URL, a.Data["authorization_header"].(string)); got != 200 {
		t.Fatalf("CRM API answered %d", got)
	}
	if c := e.emu.Counts(); c.ClientCredentials != 1 {
		t.Fatalf("client credentials grants = %d, want 1 (the write's)", c.ClientCredentials)
	}

	// Leases end, the token is revoked upstream.
	if err := e.revokeLease(a); err != nil {
		t.Fatal(err)
	}
	if err := e.revokeLease(b); err != nil {
		t.Fatal(err)
	}
	if e.emu.IsLive(tok) {
		t.Fatal("token live after its leases ended")
	}

	// The next read mints with the client-credentials grant.
	e.clock.Advance(time.Minute)
	c := e.readPath("self/reports")
	if c.Data["access_token"] == tok || e.emu.Counts().ClientCredentials != 2 {
		t.Fatal("no new client-credentials token")
	}

	status := e.mustOK(logical.ReadOperation, "self/reports/status", nil)
	if status.Data["name"] != "reports" || status.Data["source"] != "client_credentials" ||
		status.Data["mints_in_window"] != 2 {
		t.Fatalf("status %v", status.Data)
	}

	list := e.mustOK(logical.ListOperation, "self/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 1 || keys[0] != "reports" {
		t.Fatalf("list %v", keys)
	}
	e.mustOK(logical.DeleteOperation, "self/reports", nil)
	if e.emu.IsLive(c.Data["access_token"].(string)) {
		t.Fatal("delete left the access token live")
	}
	e.mustFail(404, logical.ReadOperation, "self/reports", nil)
	// A credential under creds/ of the same name is unaffected territory.
	e.mustFail(404, logical.ReadOperation, "creds/reports", nil)
}

func TestSelf_WrongSecretNamed(t *testing.T) {
	e := getTestBackend(t)
	e.configure(map[string]interface{}{"client_secret": "not-the-secret"})
	msg := e.mustFail(400, logical.UpdateOperation, "self/reports",
		map[string]interface{}{"soid": testSoid})
	if !strings.Contains(msg, "invalid_client_secret") || strings.Contains(msg, "not-the-secret") {
		t.Fatalf("message %q", msg)
	}
}
