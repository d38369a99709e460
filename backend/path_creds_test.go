package backend

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// apiStatus calls the CRM API the way an application would.
func apiStatus(t *testing.T, apiDomain, authorization string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, apiDomain+"/crm/v2/org", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func storedCred(t *testing.T, e *testEnv, name string) *credEntry {
	t.Helper()
	c, err := getCred(context.Background(), e.storage, name)
	if err != nil || c == nil {
		t.Fatalf("credential %s not stored (err %v)", name, err)
	}
	return c
}

func TestCreds_BrowserFlowEndToEnd(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, _ := e.authorize("office", nil)

	resp := e.mustOK(logical.UpdateOperation, "creds/office",
		map[string]interface{}{"callback_url": cb})
	if resp.Data["name"] != "office" || resp.Data["api_domain"] != e.emu.URL ||
		resp.Data["source"] != "authorization_code" || resp.Data["location"] != "us" {
		t.Fatalf("write answer %v", resp.Data)
	}
	if _, err := time.Parse(time.RFC3339, resp.Data["created_at"].(string)); err != nil {
		t.Fatalf("created_at: %v", err)
	}
	rt := storedCred(t, e, "office").RefreshToken
	if !e.emu.IsLive(rt) {
		t.Fatal("stored refresh token is not live upstream")
	}
	for k, v := range resp.Data {
		if strings.Contains(fmtValue(v), rt) {
			t.Fatalf("write answer shows the refresh token in %s", k)
		}
	}

	read := e.read("office")
	d := read.Data
	tok := d["access_token"].(string)
	if d["authorization_header"] != "Zoho-oauthtoken "+tok || d["api_domain"] != e.emu.URL {
		t.Fatalf("read answer %v", d)
	}
	exp, err := time.Parse(time.RFC3339, d["expires_at"].(string))
	if err != nil || !exp.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("expires_at %v (err %v)", d["expires_at"], err)
	}
	if read.Secret.TTL != time.Hour-30*time.Second {
		t.Fatalf("lease TTL %v, want the token's hour less the 30s margin", read.Secret.TTL)
	}
	if got := apiStatus(t, d["api_domain"].(string), d["authorization_header"].(string)); got != 200 {
		t.Fatalf("CRM API answered %d with a fresh token", got)
	}
	// The exchange's own access token served the first read: no refresh.
	if c := e.emu.Counts(); c.CodeExchanges != 1 || c.Refreshes != 0 {
		t.Fatalf("upstream counts %+v", c)
	}

	if err := e.revokeLease(read); err != nil {
		t.Fatal(err)
	}
	if got := apiStatus(t, e.emu.URL, "Zoho-oauthtoken "+tok); got != 401 {
		t.Fatalf("CRM API answered %d after the lease was revoked", got)
	}
}

func TestCreds_CodeAndState(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, state := e.authorize("office", nil)
	q := queryOf(t, cb)

	e.mustOK(logical.UpdateOperation, "creds/office", map[string]interface{}{
		"code": q.Get("code"), "state": state,
	})
	if !e.emu.IsLive(storedCred(t, e, "office").RefreshToken) {
		t.Fatal("refresh token not live")
	}
}

func TestCreds_SelfClientCode(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	code := e.emu.SelfClientCode(testClientID, []string{"ZohoCRM.modules.ALL"})

	resp := e.mustOK(logical.UpdateOperation, "creds/console", map[string]interface{}{
		"code": code, "self_client": true,
	})
	if resp.Data["source"] != "self_client" {
		t.Fatalf("source %v", resp.Data["source"])
	}
	if tok := e.read("console").Data["access_token"].(string); !e.emu.IsLive(tok) {
		t.Fatal("self client access token not live")
	}
}

func TestCreds_RefreshTokenImport(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	rt := e.emu.IssueRefreshToken(testClientID, testUser, []string{"ZohoCRM.modules.ALL"})

	resp := e.mustOK(logical.UpdateOperation, "creds/imported",
		map[string]interface{}{"refresh_token": rt})
	if resp.Data["source"] != "refresh_token" {
		t.Fatalf("source %v", resp.Data["source"])
	}
	if storedCred(t, e, "imported").RefreshToken != rt {
		t.Fatal("imported refresh token not stored as given")
	}
	// The import minted once to prove the token; the read reuses that.
	e.read("imported")
	if c := e.emu.Counts(); c.Refreshes != 1 {
		t.Fatalf("refreshes = %d, want 1", c.Refreshes)
	}
}

func TestCreds_ImportOfDeadRefreshTokenStoresNothing(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)

	msg := e.mustFail(400, logical.UpdateOperation, "creds/imported",
		map[string]interface{}{"refresh_token": "1000.deadbeef.deadbeef"})
	if !strings.Contains(msg, "rejected refresh_token") {
		t.Fatalf("message %q", msg)
	}
	if _, err := e.request(logical.ReadOperation, "creds/imported", nil); err == nil {
		t.Fatal("a rejected import left a credential")
	}
}

func TestCreds_NoRefreshTokenWithoutOfflineConsent(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, _ := e.authorize("office", map[string]interface{}{"access_type": "online"})

	msg := e.mustFail(400, logical.UpdateOperation, "creds/office",
		map[string]interface{}{"callback_url": cb})
	if !strings.Contains(msg, "access_type=offline") || !strings.Contains(msg, "prompt=consent") {
		t.Fatalf("message %q does not say how to get a refresh token", msg)
	}
	if c := e.emu.Counts(); c.Revocations != 1 {
		t.Fatalf("the stray access token was not revoked: %+v", c)
	}
	if keys, _ := e.storage.List(context.Background(), credsPrefix); len(keys) != 0 {
		t.Fatalf("credential stored: %v", keys)
	}
}

func TestCreds_HostileAccountsServerGetsNothing(t *testing.T) {
	var hits atomic.Int32
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer hostile.Close()

	e := getTestBackend(t, func(o *accountstest.Options) { o.AccountsServer = hostile.URL })
	e.configure(nil)
	cb, _ := e.authorize("office", nil)

	msg := e.mustFail(400, logical.UpdateOperation, "creds/office",
		map[string]interface{}{"callback_url": cb})
	if !strings.Contains(msg, "allowed_accounts_servers") || !strings.Contains(msg, hostile.URL) {
		t.Fatalf("message %q", msg)
	}
	if hits.Load() != 0 {
		t.Fatalf("the hostile accounts server got %d requests", hits.Load())
	}
}

func TestCreds_CodeExchangedAtNamedAccountsServer(t *testing.T) {
	// The EU accounts server issues the code; the config names the US one.
	eu := accountstest.NewServer(accountstest.Options{Location: "eu"})
	defer eu.Close()
	eu.AddClient(accountstest.Client{ID: testClientID, Secret: testClientSecret,
		RedirectURIs: []string{testRedirect}})

	e := getTestBackend(t)
	e.configure(map[string]interface{}{
		"allowed_accounts_servers": e.emu.URL + "," + eu.URL,
	})
	resp := e.mustOK(logical.UpdateOperation, "auth-code-url", map[string]interface{}{"name": "eu"})
	// The person signs in at the EU server, which redirects with its own
	// accounts-server.
	authURL := strings.Replace(resp.Data["url"].(string), e.emu.URL, eu.URL, 1)
	cb, err := eu.Approve(authURL, testUser)
	if err != nil {
		t.Fatal(err)
	}

	w := e.mustOK(logical.UpdateOperation, "creds/eu", map[string]interface{}{"callback_url": cb})
	if w.Data["accounts_server"] != eu.URL || w.Data["location"] != "eu" {
		t.Fatalf("write answer %v", w.Data)
	}
	if eu.Counts().CodeExchanges != 1 || e.emu.Counts().TokenRequests != 0 {
		t.Fatal("the code was not exchanged at the server that issued it")
	}

	// Refreshes go to the EU server too.
	e.clock.Advance(time.Hour)
	e.read("eu")
	if eu.Counts().Refreshes != 1 || e.emu.Counts().TokenRequests != 0 {
		t.Fatalf("refresh went elsewhere: eu %+v", eu.Counts())
	}
}

func TestCreds_OverwriteRevokesReplacedRefreshToken(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	old := storedCred(t, e, "office").RefreshToken
	oldLease := e.read("office")

	e.newCred("office")
	cur := storedCred(t, e, "office").RefreshToken
	if cur == old || !e.emu.IsLive(cur) {
		t.Fatal("new refresh token not stored or not live")
	}
	if e.emu.IsLive(old) {
		t.Fatal("replaced refresh token still live upstream")
	}
	if e.emu.RefreshTokens(testClientID, testUser) != 1 {
		t.Fatalf("user holds %d refresh tokens, want 1", e.emu.RefreshTokens(testClientID, testUser))
	}
	// A lease from before the overwrite ends cleanly.
	if err := e.revokeLease(oldLease); err != nil {
		t.Fatal(err)
	}
}

func TestCreds_DeleteRevokesUpstream(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	rt := storedCred(t, e, "office").RefreshToken
	lease := e.read("office")

	e.mustOK(logical.DeleteOperation, "creds/office", nil)
	if e.emu.IsLive(rt) || e.emu.IsLive(lease.Data["access_token"].(string)) {
		t.Fatal("tokens still live after delete")
	}
	list := e.mustOK(logical.ListOperation, "creds/", nil)
	if keys, _ := list.Data["keys"].([]string); len(keys) != 0 {
		t.Fatalf("list after delete: %v", keys)
	}
	if err := e.revokeLease(lease); err != nil {
		t.Fatalf("revoking a lease of a deleted credential: %v", err)
	}
	// Deleting again is not an error.
	e.mustOK(logical.DeleteOperation, "creds/office", nil)
}

func TestCreds_DeleteWithoutRevoke(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	rt := storedCred(t, e, "office").RefreshToken

	e.mustOK(logical.DeleteOperation, "creds/office", map[string]interface{}{"revoke": false})
	if !e.emu.IsLive(rt) {
		t.Fatal("revoke=false revoked the refresh token")
	}
}

func TestCreds_DeleteKeepsCredentialWhenRevokeFails(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	e.emu.SetFaults(accountstest.Faults{Status: 503})

	e.mustFail(502, logical.DeleteOperation, "creds/office", nil)
	e.emu.SetFaults(accountstest.Faults{})
	storedCred(t, e, "office")
}

func TestCreds_List(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("a")
	e.newCred("b")

	resp := e.mustOK(logical.ListOperation, "creds/", nil)
	if got := strings.Join(resp.Data["keys"].([]string), ","); got != "a,b" {
		t.Fatalf("keys %s", got)
	}
}

func TestCreds_ReadUnknown(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	msg := e.mustFail(404, logical.ReadOperation, "creds/nobody", nil)
	if !strings.Contains(msg, "write creds/nobody") {
		t.Fatalf("message %q", msg)
	}
}

// failingStorage fails every Put under a prefix, to show that nothing is
// lost or orphaned when storage breaks mid-write.
type failingStorage struct {
	logical.Storage
	prefix string
}

func (f *failingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.HasPrefix(e.Key, f.prefix) {
		return errors.New("injected storage failure")
	}
	return f.Storage.Put(ctx, e)
}

func TestCreds_StorageFailureAfterExchangeRevokesRefreshToken(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	cb, _ := e.authorize("office", nil)

	inner := e.storage
	e.storage = &failingStorage{Storage: inner, prefix: credsPrefix}
	_, err := e.request(logical.UpdateOperation, "creds/office",
		map[string]interface{}{"callback_url": cb})
	if err == nil {
		t.Fatal("write succeeded with failing storage")
	}
	if c := e.emu.Counts(); c.CodeExchanges != 1 || c.Revocations != 1 {
		t.Fatalf("counts %+v: the orphaned refresh token was not revoked", c)
	}
	if e.emu.RefreshTokens(testClientID, testUser) != 0 {
		t.Fatal("a refresh token is left live upstream")
	}
}

func TestCreds_WALRollbackRevokesUnstoredToken(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	rt := e.emu.IssueRefreshToken(testClientID, testUser, nil)

	data := map[string]interface{}{"name": "office", "refresh_token": rt}
	if err := e.b.walRollback(context.Background(), &logical.Request{Storage: e.storage},
		walKindRefreshToken, data); err != nil {
		t.Fatal(err)
	}
	if e.emu.IsLive(rt) {
		t.Fatal("rollback left the refresh token live")
	}
}

func TestCreds_WALRollbackKeepsStoredToken(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	rt := storedCred(t, e, "office").RefreshToken

	data := map[string]interface{}{"name": "office", "refresh_token": rt}
	if err := e.b.walRollback(context.Background(), &logical.Request{Storage: e.storage},
		walKindRefreshToken, data); err != nil {
		t.Fatal(err)
	}
	if !e.emu.IsLive(rt) {
		t.Fatal("rollback revoked a refresh token that was stored")
	}
}

func TestCreds_ReadsDoNotWaitOnAnOverwrite(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	e.read("office")
	cb, _ := e.authorize("office", nil)

	// The exchange of the new code is slow.
	e.emu.SetFaults(accountstest.Faults{Latency: 2 * time.Second})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.request(logical.UpdateOperation, "creds/office", map[string]interface{}{"callback_url": cb})
	}()
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	e.read("office")
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a read waited %v on an overwrite's exchange", took)
	}
	<-done
}
