package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

const (
	testClientID     = "1000.TESTCLIENTID"
	testClientSecret = "test-client-secret-d41d8cd98f00b204"
	testRedirect     = "https://app.example.org/oauth/callback"
	testUser         = "rabbi@example.org"
)

// syncBuffer collects the backend's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

type testEnv struct {
	t       testing.TB
	b       *backend
	storage logical.Storage
	emu     *accountstest.Server
	clock   *accountstest.Clock
	logs    *syncBuffer
	sys     *logical.StaticSystemView
}

// getTestBackend returns a backend on in-memory storage, talking to an
// emulator on loopback, both on one fake clock. The engine is not yet
// configured.
func getTestBackend(t *testing.T, opts ...func(*accountstest.Options)) *testEnv {
	return getTestBackendTB(t, opts...)
}

// getTestBackendTB is getTestBackend for tests and benchmarks alike.
func getTestBackendTB(t testing.TB, opts ...func(*accountstest.Options)) *testEnv {
	t.Helper()
	clock := accountstest.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))

	eo := accountstest.Options{Now: clock.Now}
	for _, o := range opts {
		o(&eo)
	}
	emu := accountstest.NewServer(eo)
	t.Cleanup(emu.Close)
	emu.AddClient(accountstest.Client{
		ID: testClientID, Secret: testClientSecret,
		RedirectURIs: []string{testRedirect},
	})

	logs := &syncBuffer{}
	conf := logical.TestBackendConfig()
	conf.Logger = hclog.New(&hclog.LoggerOptions{
		Output: logs, Level: hclog.Trace, JSONFormat: true,
	})
	sys := &logical.StaticSystemView{
		DefaultLeaseTTLVal: 24 * time.Hour,
		MaxLeaseTTLVal:     48 * time.Hour,
		PluginEnvironment:  &logical.PluginEnvironment{VaultVersion: "1.21.0"},
	}
	conf.System = sys
	conf.StorageView = &logical.InmemStorage{}

	b := newBackend()
	b.now = clock.Now
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, b: b, storage: conf.StorageView, emu: emu,
		clock: clock, logs: logs, sys: sys}
}

// request runs one request against the backend and fails the test on an
// internal error.
func (e *testEnv) request(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	e.t.Helper()
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: op,
		Path:      path,
		Data:      data,
		Storage:   e.storage,
	})
}

// mustOK runs a request that must succeed.
func (e *testEnv) mustOK(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.request(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp != nil && resp.IsError() {
		e.t.Fatalf("%s %s: %v", op, path, resp.Error())
	}
	return resp
}

// mustFail runs a request that must fail with status, and returns the
// message.
func (e *testEnv) mustFail(status int, op logical.Operation, path string, data map[string]interface{}) string {
	e.t.Helper()
	resp, err := e.request(op, path, data)
	got, msg := statusOf(resp, err)
	if got != status {
		e.t.Fatalf("%s %s: status %d (%s), want %d", op, path, got, msg, status)
	}
	return msg
}

// statusOf is the HTTP status and message Vault would answer.
func statusOf(resp *logical.Response, err error) (int, string) {
	if err != nil {
		if coded, ok := err.(logical.HTTPCodedError); ok {
			return coded.Code(), coded.Error()
		}
		return 500, err.Error()
	}
	if resp != nil && resp.IsError() {
		return 400, resp.Error().Error()
	}
	return 200, ""
}

// configure writes a config pointing at the emulator.
func (e *testEnv) configure(extra map[string]interface{}) {
	e.t.Helper()
	data := map[string]interface{}{
		"client_id":     testClientID,
		"client_secret": testClientSecret,
		"redirect_uri":  testRedirect,
		"accounts_url":  e.emu.URL,
	}
	for k, v := range extra {
		data[k] = v
	}
	e.mustOK(logical.UpdateOperation, "config", data)
}

// authorize walks the grant flow for name and returns the callback URL the
// browser would land on.
func (e *testEnv) authorize(name string, data map[string]interface{}) (callbackURL, state string) {
	e.t.Helper()
	if data == nil {
		data = map[string]interface{}{}
	}
	data["name"] = name
	resp := e.mustOK(logical.UpdateOperation, "auth-code-url", data)
	cb, err := e.emu.Approve(resp.Data["url"].(string), testUser)
	if err != nil {
		e.t.Fatalf("approve: %v", err)
	}
	return cb, resp.Data["state"].(string)
}

// newCred configures the engine and stores credential name through the
// browser flow.
func (e *testEnv) newCred(name string) {
	e.t.Helper()
	cb, _ := e.authorize(name, nil)
	e.mustOK(logical.UpdateOperation, "creds/"+name, map[string]interface{}{
		"callback_url": cb,
	})
}

// read reads creds/name and returns the response with its secret's
// internal data round-tripped through JSON, as Vault stores it.
func (e *testEnv) read(name string) *logical.Response {
	e.t.Helper()
	return e.readPath("creds/" + name)
}

// readPath reads a leasing path, like read.
func (e *testEnv) readPath(path string) *logical.Response {
	e.t.Helper()
	resp := e.mustOK(logical.ReadOperation, path, nil)
	if resp.Secret == nil {
		e.t.Fatalf("read %s: no lease", path)
	}
	raw, err := json.Marshal(resp.Secret.InternalData)
	if err != nil {
		e.t.Fatal(err)
	}
	var internal map[string]interface{}
	if err := json.Unmarshal(raw, &internal); err != nil {
		e.t.Fatal(err)
	}
	resp.Secret.InternalData = internal
	resp.Secret.IssueTime = e.clock.Now()
	return resp
}

// revokeLease ends the lease of a read, as Vault does on expiry or
// `vault lease revoke`.
func (e *testEnv) revokeLease(resp *logical.Response) error {
	e.t.Helper()
	r, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RevokeOperation,
		Secret:    resp.Secret,
		Storage:   e.storage,
	})
	if err != nil {
		return err
	}
	if r != nil && r.IsError() {
		return r.Error()
	}
	return nil
}

// renewLease renews the lease of a read.
func (e *testEnv) renewLease(resp *logical.Response, increment time.Duration) (*logical.Response, error) {
	e.t.Helper()
	secret := *resp.Secret
	secret.Increment = increment
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RenewOperation,
		Secret:    &secret,
		Storage:   e.storage,
	})
}

// storageDump returns every stored key and value, for leak and
// unchanged-storage checks.
func (e *testEnv) storageDump() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	var walk func(prefix string)
	walk = func(prefix string) {
		keys, err := e.storage.List(context.Background(), prefix)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				walk(prefix + k)
				continue
			}
			entry, err := e.storage.Get(context.Background(), prefix+k)
			if err != nil {
				e.t.Fatal(err)
			}
			if entry != nil {
				out[prefix+k] = string(entry.Value)
			}
		}
	}
	walk("")
	return out
}

// queryOf returns the query parameters of a URL.
func queryOf(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
