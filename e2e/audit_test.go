//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// TestSecretsNeverLeak enables a file audit device, runs every flow of the
// engine (and calls that fail) against an emulator that records every
// secret crossing it, then searches the audit log, Vault's server log and
// the plugin's log for each secret value: none appears in the clear, while
// the audit log holds the HMAC of each one that went through Vault.
func TestSecretsNeverLeak(t *testing.T) {
	showLogOnFailure(t, env.vault)
	c := env.client
	ctx := testCtx(t)
	logStart := fileSize(env.vault.LogPath)

	emu := newTappedEmulator(t, accountstest.Options{CodeLimit: 100})
	secret := "audit-secret-" + randomHex(t, 16)
	emu.AddClient(accountstest.Client{
		ID: clientID, Secret: secret,
		RedirectURIs: []string{emu.URL + "/callback"},
	})
	s := newSecretSet()
	s.add(secret, kindClientSecret, "client secret", true)

	// The audit device, removed when the test ends.
	const device = "e2e-leaks"
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	err := c.Sys().EnableAuditWithOptionsWithContext(ctx, device, &api.EnableAuditOptions{
		Type:    "file",
		Options: map[string]string{"file_path": auditPath},
	})
	if err != nil {
		t.Fatalf("enable file audit device: %v", err)
	}
	t.Cleanup(func() { c.Sys().DisableAudit(device) })

	const mount = mountPath + "-audit"
	if err := c.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: pluginName}); err != nil {
		t.Fatalf("enable at %s: %v", mount, err)
	}
	t.Cleanup(func() { c.Sys().Unmount(mount) })
	f := &flows{t: t, ctx: ctx, c: c, mount: mount}

	// Configure, and read the configuration back.
	f.write("config", map[string]any{
		"client_id":     clientID,
		"client_secret": secret,
		"accounts_url":  emu.URL,
		"redirect_uri":  emu.URL + "/callback",
	})
	if cfg := f.read("config"); cfg != nil {
		if _, ok := cfg.Data["client_secret"]; ok {
			t.Errorf("config read returned client_secret")
		}
	}

	// Browser flow, pasting the whole callback URL.
	url1, state1 := f.authCodeURL("browser")
	s.add(state1, kindState, "state of the browser flow", true)
	cb1 := f.approve(emu, url1)
	s.add(cb1, kindCallback, "callback_url", true)
	s.add(query(t, cb1, "code"), kindCode, "grant code in the callback_url", false)
	f.write("creds/browser", map[string]any{"callback_url": cb1})

	// Browser flow, code and state in pieces.
	url2, state2 := f.authCodeURL("pieces")
	s.add(state2, kindState, "state written with its code", true)
	cb2 := f.approve(emu, url2)
	code2 := query(t, cb2, "code")
	s.add(code2, kindCode, "grant code written with its state", true)
	f.write("creds/pieces", map[string]any{
		"code": code2, "state": state2, "accounts_server": query(t, cb2, "accounts-server"),
	})

	// A Self Client code from the API console.
	scopes := []string{"ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL"}
	selfCode := emu.SelfClientCode(clientID, scopes)
	s.add(selfCode, kindCode, "Self Client grant code", true)
	f.write("creds/console", map[string]any{"code": selfCode, "self_client": true})

	// A refresh token made elsewhere.
	imported := emu.IssueRefreshToken(clientID, "", scopes)
	s.add(imported, kindRefresh, "imported refresh token", true)
	f.write("creds/imported", map[string]any{"refresh_token": imported})

	// Client credentials.
	f.write("self/reports", map[string]any{
		"soid": "ZohoCRM.10023122998", "scopes": "ZohoCRM.modules.READ",
	})

	// Leased reads of each, listing, status, renewal and revocation.
	var leases []string
	for _, p := range []string{"creds/browser", "creds/pieces", "creds/console",
		"creds/imported", "self/reports"} {
		r := f.read(p)
		if r == nil {
			continue
		}
		tok, _ := r.Data["access_token"].(string)
		s.add(tok, kindAccess, "access token read from "+p, true)
		header, _ := r.Data["authorization_header"].(string)
		s.add(header, kindAccess, "authorization header read from "+p, true)
		leases = append(leases, r.LeaseID)
	}
	f.list("creds")
	f.list("self")
	f.read("creds/browser/status")
	if len(leases) > 0 {
		if _, err := c.Sys().RenewWithContext(ctx, leases[0], 120); err != nil {
			t.Errorf("renew %s: %v", leases[0], err)
		}
		revokeLease(t, c, leases[0])
	}
	f.delete("creds/pieces")

	// Calls that fail: a reused state, a bad code, a used Self Client code,
	// a dead refresh token, a wrong client secret.
	f.fail("creds/again", map[string]any{"callback_url": cb1}, "state")
	_, state3 := f.authCodeURL("bad")
	s.add(state3, kindState, "state written with a bad code", true)
	badCode := "1000." + randomHex(t, 16) + "." + randomHex(t, 16)
	s.add(badCode, kindCode, "bad grant code", true)
	f.fail("creds/bad", map[string]any{"code": badCode, "state": state3}, "code")
	f.fail("creds/console2", map[string]any{"code": selfCode, "self_client": true}, "code")
	dead := "1000." + randomHex(t, 16) + "." + randomHex(t, 16)
	s.add(dead, kindRefresh, "unknown refresh token", true)
	f.fail("creds/dead", map[string]any{"refresh_token": dead}, "refresh")
	wrong := "wrong-secret-" + randomHex(t, 16)
	s.add(wrong, kindClientSecret, "wrong client secret", true)
	f.write("config", map[string]any{"client_secret": wrong})
	f.fail("self/wrong", map[string]any{"soid": "ZohoCRM.10023122998"}, "secret")
	f.write("config", map[string]any{"client_secret": secret})

	// A canary in a request path, which the audit device does not HMAC:
	// the search below must find it, or it could not find a leak.
	canary := "canary" + randomHex(t, 8)
	c.Logical().ReadWithContext(ctx, mount+"/creds/"+canary) // 404

	// The end of every lease, and of every credential.
	if err := c.Sys().RevokePrefixWithContext(ctx, mount); err != nil {
		t.Errorf("revoke-prefix %s: %v", mount, err)
	}
	for _, p := range []string{"creds/browser", "creds/console", "creds/imported",
		"self/reports"} {
		f.delete(p)
	}

	// Every value the accounts server saw or answered counts too, such as
	// the refresh tokens of the code exchanges, which Vault never shows.
	for v, seen := range emu.seen() {
		s.add(v, seen.kind, seen.what, false)
	}
	hashes := s.auditHashes(ctx, t, c, device)

	// The plugin's lines reach Vault's log through go-plugin a moment
	// after the calls return.
	pluginLog := waitPluginLog(t, logStart, "credential deleted", 10*time.Second)
	auditLog := readFile(t, auditPath)
	vaultLog := readFile(t, env.vault.LogPath)

	// Zero hits in the clear, anywhere.
	logs := []struct {
		name string
		b    []byte
	}{{"audit log", auditLog}, {"Vault server log", vaultLog}, {"plugin log", pluginLog}}
	leaks := 0
	for _, sv := range s.sorted() {
		for _, l := range logs {
			for _, form := range clearForms(sv.value) {
				if n := bytes.Count(l.b, []byte(form)); n > 0 {
					leaks += n
					t.Errorf("%s: %s appears %d times in the clear (at %q)", l.name,
						sv.what, n, around(l.b, form))
				}
			}
		}
	}

	// The search is not vacuous: it finds the canary, the audit log covers
	// every path, holds
	// the HMAC of each secret that went through Vault, and the plugin
	// logged the flows.
	if !bytes.Contains(auditLog, []byte(canary)) {
		t.Errorf("the search did not find the canary %q in the audit log", canary)
	}
	paths, entries := auditPaths(t, auditLog)
	for _, p := range []string{"config", "auth-code-url", "creds/browser",
		"creds/pieces", "creds/console", "creds/imported", "creds/bad",
		"creds/again", "creds/dead", "creds/browser/status", "creds/",
		"self/reports", "self/wrong", "self/"} {
		if !paths[mount+"/"+p] {
			t.Errorf("the audit log has no entry for %s/%s", mount, p)
		}
	}
	for _, p := range []string{"sys/leases/renew", "sys/leases/revoke",
		"sys/leases/revoke-prefix/" + mount} {
		if !paths[p] {
			t.Errorf("the audit log has no entry for %s", p)
		}
	}
	hmacs := bytes.Count(auditLog, []byte("hmac-sha256:"))
	if hmacs == 0 {
		t.Errorf("the audit log holds no hmac-sha256 values")
	}
	hashed := 0
	for _, sv := range s.sorted() {
		if !sv.viaVault {
			continue
		}
		if bytes.Contains(auditLog, []byte(hashes[sv.value])) {
			hashed++
		} else {
			t.Errorf("the audit log lacks the HMAC of the %s, which went through Vault",
				sv.what)
		}
	}
	for _, msg := range []string{"credential stored", "access token leased",
		"access token revoked", "credential deleted"} {
		if !bytes.Contains(pluginLog, []byte(msg)) {
			t.Errorf("the plugin log has no %q line", msg)
		}
	}

	kinds := s.kinds()
	report(t, "secrets never leak",
		fmt.Sprintf("file audit device on the dev Vault (debug log); every flow: config "+
			"write/read, auth-code-url, consent, creds write with callback_url, with "+
			"code+state, Self Client code, refresh_token import, self/ client "+
			"credentials, %d leased reads, list, status, renew, lease revoke, "+
			"revoke-prefix, delete; failing calls: reused state, bad code, used Self "+
			"Client code, dead refresh token, wrong client secret; then searched for "+
			"%d secret values (%s)", len(leases), len(s.values), kinds),
		fmt.Sprintf("%d clear hits in the audit log (%d entries, %d hmac-sha256 values, "+
			"%d paths), the Vault server log (%d KiB) and the plugin log (%d lines); "+
			"the HMAC of all %d values sent through Vault is in the audit log; a "+
			"canary in a request path is found in the clear, so the search works",
			leaks, entries, hmacs, len(paths), len(vaultLog)/1024,
			bytes.Count(pluginLog, []byte("\n")), hashed))
}

// flows runs calls on one mount, failing the test on an unexpected answer.
type flows struct {
	t     *testing.T
	ctx   context.Context
	c     *api.Client
	mount string
}

func (f *flows) write(p string, data map[string]any) *api.Secret {
	f.t.Helper()
	r, err := f.c.Logical().WriteWithContext(f.ctx, f.mount+"/"+p, data)
	if err != nil {
		f.t.Errorf("write %s/%s: %v", f.mount, p, err)
	}
	return r
}

func (f *flows) read(p string) *api.Secret {
	f.t.Helper()
	r, err := f.c.Logical().ReadWithContext(f.ctx, f.mount+"/"+p)
	if err != nil || r == nil {
		f.t.Errorf("read %s/%s: %v", f.mount, p, err)
		return nil
	}
	return r
}

func (f *flows) list(p string) {
	f.t.Helper()
	if _, err := f.c.Logical().ListWithContext(f.ctx, f.mount+"/"+p); err != nil {
		f.t.Errorf("list %s/%s: %v", f.mount, p, err)
	}
}

func (f *flows) delete(p string) {
	f.t.Helper()
	if _, err := f.c.Logical().DeleteWithContext(f.ctx, f.mount+"/"+p); err != nil {
		f.t.Errorf("delete %s/%s: %v", f.mount, p, err)
	}
}

// fail writes data to p and wants a 4xx answer whose message mentions
// about.
func (f *flows) fail(p string, data map[string]any, about string) {
	f.t.Helper()
	_, err := f.c.Logical().WriteWithContext(f.ctx, f.mount+"/"+p, data)
	st := statusOf(err)
	if st < 400 || st >= 500 || !strings.Contains(strings.ToLower(err.Error()), about) {
		f.t.Errorf("write %s/%s: %v; want a 4xx about %q", f.mount, p, err, about)
	}
}

// authCodeURL asks for a grant-code URL for name.
func (f *flows) authCodeURL(name string) (string, string) {
	f.t.Helper()
	r := f.write("auth-code-url", map[string]any{"name": name})
	if r == nil {
		f.t.FailNow()
	}
	u, _ := r.Data["url"].(string)
	st, _ := r.Data["state"].(string)
	return u, st
}

// approve has the CRM user approve authURL and returns the callback URL.
func (f *flows) approve(emu *tappedEmulator, authURL string) string {
	f.t.Helper()
	cb, err := emu.Approve(authURL, "")
	if err != nil {
		f.t.Fatalf("approve at the emulator: %v", err)
	}
	return cb
}

// secretSet is every secret value a test used, with what it is and
// whether it went through Vault's API (so its HMAC must be in the audit
// log).
type secretSet struct {
	values map[string]*secretValue
}

type secretValue struct {
	value    string
	kind     string
	what     string
	viaVault bool
}

// Kinds of secret values, for the summary.
const (
	kindClientSecret = "client secrets"
	kindCode         = "grant codes"
	kindState        = "states"
	kindCallback     = "callback URLs"
	kindRefresh      = "refresh tokens"
	kindAccess       = "access tokens and headers"
	kindToken        = "tokens sent for revocation"
)

func newSecretSet() *secretSet { return &secretSet{values: map[string]*secretValue{}} }

func (s *secretSet) add(value, kind, what string, viaVault bool) {
	if len(value) < 8 {
		return
	}
	if old, ok := s.values[value]; ok {
		old.viaVault = old.viaVault || viaVault
		return
	}
	s.values[value] = &secretValue{value: value, kind: kind, what: what, viaVault: viaVault}
}

func (s *secretSet) sorted() []*secretValue {
	out := make([]*secretValue, 0, len(s.values))
	for _, v := range s.values {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].what < out[j].what })
	return out
}

// kinds counts the values by kind, for the summary.
func (s *secretSet) kinds() string {
	n := map[string]int{}
	for _, v := range s.values {
		n[v.kind]++
	}
	var parts []string
	for k, v := range n {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// auditHashes asks the audit device for the HMAC of each value that went
// through Vault.
func (s *secretSet) auditHashes(ctx context.Context, t *testing.T, c *api.Client,
	device string,
) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range s.values {
		if !v.viaVault {
			continue
		}
		h, err := c.Sys().AuditHashWithContext(ctx, device, v.value)
		if err != nil {
			t.Fatalf("sys/audit-hash/%s: %v", device, err)
		}
		out[v.value] = h
	}
	return out
}

// clearForms are the ways a value could appear in a log in the clear:
// as is, URL-encoded and JSON-escaped.
func clearForms(v string) []string {
	forms := []string{v}
	for _, f := range []string{url.QueryEscape(v), jsonEscaped(v)} {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}

func jsonEscaped(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}

// around returns a short stretch of b around the first form, with the
// form itself masked, to say where a leak is without repeating it.
func around(b []byte, form string) string {
	i := bytes.Index(b, []byte(form))
	if i < 0 {
		return ""
	}
	from, to := max(0, i-60), min(len(b), i+len(form)+20)
	return string(b[from:i]) + "<SECRET>" + string(b[i+len(form):to])
}

// auditPaths returns the request paths of the audit log's entries and how
// many entries it has.
func auditPaths(t *testing.T, log []byte) (map[string]bool, int) {
	t.Helper()
	paths := map[string]bool{}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct {
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("audit log line is not JSON: %v", err)
			continue
		}
		n++
		paths[e.Request.Path] = true
	}
	return paths, n
}

// waitPluginLog waits up to d until the plugin's lines in Vault's log
// (from offset on) contain want, and returns those lines.
func waitPluginLog(t *testing.T, offset int64, want string, d time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b := readFile(t, env.vault.LogPath)
		var out bytes.Buffer
		for _, line := range bytes.SplitAfter(b[min(int(offset), len(b)):], []byte("\n")) {
			if bytes.Contains(line, []byte("secrets."+pluginName)) {
				out.Write(line)
			}
		}
		if bytes.Contains(out.Bytes(), []byte(want)) || time.Now().After(deadline) {
			return out.Bytes()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// query returns the parameter k of the URL u.
func query(t *testing.T, u, k string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse %q: %v", u, err)
	}
	return p.Query().Get(k)
}
