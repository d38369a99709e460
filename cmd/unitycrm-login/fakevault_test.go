package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend"
)

// fakeVault is Vault's HTTP API in front of the real backend: requests
// under /v1/<mount>/ become logical requests, answers and errors are
// shaped as Vault shapes them. It records every secret it sees pass, so
// tests can check that the CLI printed none.
type fakeVault struct {
	t       *testing.T
	URL     string
	mount   string
	token   string
	b       logical.Backend
	storage *logical.InmemStorage

	mu       sync.Mutex
	secrets  []string
	authURLs []string
	requests int
}

func newFakeVault(t *testing.T, mount, token string) *fakeVault {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.Logger = hclog.NewNullLogger()
	storage := &logical.InmemStorage{}
	conf.StorageView = storage
	b, err := backend.Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}

	f := &fakeVault{t: t, mount: mount, token: token, b: b, storage: storage}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	f.mu.Unlock()

	if r.Header.Get("X-Vault-Token") != f.token {
		writeVaultErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	prefix := "/v1/" + f.mount + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		writeVaultErrors(w, http.StatusNotFound,
			"no handler for route \""+strings.TrimPrefix(r.URL.Path, "/v1/")+"\"")
		return
	}
	op, ok := operationOf(r)
	if !ok {
		writeVaultErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
		return
	}
	data, err := decodeBody(r)
	if err != nil {
		writeVaultErrors(w, http.StatusBadRequest, "failed to parse JSON input: "+
			err.Error())
		return
	}

	req := &logical.Request{
		Operation:   op,
		Path:        strings.TrimPrefix(r.URL.Path, prefix),
		Data:        data,
		Storage:     f.storage,
		MountPoint:  f.mount + "/",
		ClientToken: f.token,
	}
	resp, err := f.handle(r.Context(), req)
	f.record(req, resp)
	f.answer(w, req, resp, err)
}

// handle runs req the way Vault's router does, an update of a missing
// entry becoming a create.
func (f *fakeVault) handle(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Operation == logical.UpdateOperation {
		found, exists, err := f.b.HandleExistenceCheck(ctx, req)
		if err != nil {
			return nil, err
		}
		if found && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return f.b.HandleRequest(ctx, req)
}

func operationOf(r *http.Request) (logical.Operation, bool) {
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		return logical.UpdateOperation, true
	case http.MethodGet:
		if r.URL.Query().Get("list") == "true" {
			return logical.ListOperation, true
		}
		return logical.ReadOperation, true
	case "LIST":
		return logical.ListOperation, true
	case http.MethodDelete:
		return logical.DeleteOperation, true
	}
	return "", false
}

func decodeBody(r *http.Request) (map[string]interface{}, error) {
	var data map[string]interface{}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil && err.Error() != "EOF" {
		return nil, err
	}
	return data, nil
}

// answer writes what Vault would: an error list, 204, or the response.
func (f *fakeVault) answer(w http.ResponseWriter, req *logical.Request,
	resp *logical.Response, err error) {
	status, err := logical.RespondErrorCommon(req, resp, err)
	if status != 0 {
		var msgs []string
		if err != nil {
			msgs = []string{err.Error()}
		}
		writeVaultErrors(w, status, msgs...)
		return
	}
	if resp == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}

	body := map[string]interface{}{
		"request_id": randomHex(8),
		"data":       resp.Data,
		"warnings":   resp.Warnings,
	}
	if resp.Secret != nil {
		body["lease_id"] = f.mount + "/" + req.Path + "/" + randomHex(8)
		body["lease_duration"] = int(resp.Secret.TTL.Seconds())
		body["renewable"] = resp.Secret.Renewable
	}
	writeJSON(w, http.StatusOK, body)
}

// record keeps the secrets that passed: the state auth-code-url issued,
// the callback URL and its code, and access tokens.
func (f *fakeVault) record(req *logical.Request, resp *logical.Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cb, ok := req.Data["callback_url"].(string); ok {
		f.secrets = append(f.secrets, cb)
		if u, err := url.Parse(cb); err == nil {
			f.secrets = append(f.secrets, u.Query().Get("code"))
		}
	}
	if resp == nil || resp.IsError() {
		return
	}
	for _, k := range []string{"state", "access_token"} {
		if s, ok := resp.Data[k].(string); ok {
			f.secrets = append(f.secrets, s)
		}
	}
	if u, ok := resp.Data["url"].(string); ok && req.Path == "auth-code-url" {
		f.authURLs = append(f.authURLs, u)
	}
}

// seen returns the secrets that passed, and the refresh tokens in
// storage.
func (f *fakeVault) seen() []string {
	f.t.Helper()
	f.mu.Lock()
	out := append([]string(nil), f.secrets...)
	f.mu.Unlock()

	ctx := context.Background()
	names, err := f.storage.List(ctx, "creds/")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, n := range names {
		e, err := f.storage.Get(ctx, "creds/"+n)
		if err != nil || e == nil {
			f.t.Fatalf("storage creds/%s: %v", n, err)
		}
		var c struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := e.DecodeJSON(&c); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, c.RefreshToken)
	}
	return out
}

// issuedAuthURLs returns the URLs auth-code-url handed out.
func (f *fakeVault) issuedAuthURLs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.authURLs...)
}

func (f *fakeVault) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// storedNames lists the credentials in storage.
func (f *fakeVault) storedNames() []string {
	f.t.Helper()
	names, err := f.storage.List(context.Background(), "creds/")
	if err != nil {
		f.t.Fatal(err)
	}
	return names
}

// mustWrite writes through the backend directly, for test setup.
func (f *fakeVault) mustWrite(path string, data map[string]interface{}) {
	f.t.Helper()
	resp, err := f.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation,
		Path:      path,
		Data:      data,
		Storage:   f.storage,
	})
	if err != nil {
		f.t.Fatalf("write %s: %v", path, err)
	}
	if resp != nil && resp.IsError() {
		f.t.Fatalf("write %s: %v", path, resp.Error())
	}
}

func writeVaultErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]interface{}{"errors": msgs})
}

func writeJSON(w http.ResponseWriter, status int, body interface{}) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(body); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"errors":["encode response"]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
