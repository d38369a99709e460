package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

const (
	testClientID     = "1000.LOGINTESTCLIENT"
	testClientSecret = "login-test-client-secret-5f4dcc3b"
	testVaultToken   = "hvs.login-test-root-token"
	postmanRedirect  = "https://oauth.pstmn.io/v1/callback"
	testUser         = "rabbi@example.org"
)

// testEnv is an emulator, a fake Vault running the real backend
// configured against it, and a loopback redirect URI registered in both.
type testEnv struct {
	t        *testing.T
	emu      *accountstest.Server
	vault    *fakeVault
	listen   string
	redirect string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	emu := accountstest.NewServer(accountstest.Options{AutoApprove: true})
	t.Cleanup(emu.Close)

	listen := freeLoopbackAddr(t)
	redirect := "http://" + listen + "/callback"
	emu.AddClient(accountstest.Client{
		ID:           testClientID,
		Secret:       testClientSecret,
		RedirectURIs: []string{redirect, postmanRedirect},
	})

	fv := newFakeVault(t, "unitycrm", testVaultToken)
	fv.mustWrite("config", map[string]interface{}{
		"client_id":           testClientID,
		"client_secret":       testClientSecret,
		"redirect_uri":        postmanRedirect,
		"extra_redirect_uris": []string{redirect},
		"accounts_url":        emu.URL,
	})

	// The CLI reads the environment as the vault CLI does.
	for _, k := range []string{"VAULT_NAMESPACE", "VAULT_CACERT",
		"VAULT_CAPATH", "VAULT_AGENT_ADDR", "VAULT_WRAP_TTL"} {
		t.Setenv(k, "")
	}
	t.Setenv("VAULT_ADDR", fv.URL)
	t.Setenv("VAULT_TOKEN", testVaultToken)
	t.Setenv("HOME", t.TempDir())

	return &testEnv{t: t, emu: emu, vault: fv, listen: listen, redirect: redirect}
}

// freeLoopbackAddr returns a loopback address no one listens on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// syncBuffer is an output the CLI writes while a test reads it.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	onWrite func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.buf.Write(p)
	all := s.buf.String()
	hook := s.onWrite
	s.mu.Unlock()
	if hook != nil {
		hook(all)
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// result is what a person at the terminal saw.
type result struct {
	code   int
	stdout string
	stderr string
}

// runCLI runs the command to completion.
func runCLI(t *testing.T, stdin io.Reader, stderr *syncBuffer,
	open func(string) error, args ...string) result {
	t.Helper()
	if stderr == nil {
		stderr = &syncBuffer{}
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stdout := &syncBuffer{}
	code := run(ctx, args, stdin, stdout, stderr, open)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// browser does what a browser does with the URLs the CLI opens: it
// follows redirects, here onto the CLI's listener. It runs in the
// background, as a real one does.
type browser struct {
	t     *testing.T
	visit func(c *http.Client, u string) (*http.Response, error)

	wg     sync.WaitGroup
	mu     sync.Mutex
	opened []string
	landed []string // URLs redirected to: they carry codes
	pages  []string // status and body of the last page of each visit
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, visit: func(c *http.Client, u string) (*http.Response, error) {
		return c.Get(u)
	}}
}

func (b *browser) client() *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			b.mu.Lock()
			b.landed = append(b.landed, req.URL.String())
			b.mu.Unlock()
			return nil
		},
	}
}

func (b *browser) open(u string) error {
	b.mu.Lock()
	b.opened = append(b.opened, u)
	b.mu.Unlock()

	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		resp, err := b.visit(b.client(), u)
		if err != nil {
			b.t.Errorf("browser: %v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		b.mu.Lock()
		b.pages = append(b.pages, fmt.Sprintf("%d %s", resp.StatusCode, body))
		b.mu.Unlock()
	}()
	return nil
}

// done waits for the browser and returns the last pages it showed.
func (b *browser) done() []string {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.pages...)
}

func (b *browser) redirects() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.landed...)
}

// readCreds reads creds/name through the fake Vault, as an application
// does.
func readCreds(t *testing.T, e *testEnv, name string) *api.Secret {
	t.Helper()
	c, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(testVaultToken)
	s, err := c.Logical().Read("unitycrm/creds/" + name)
	if err != nil || s == nil {
		t.Fatalf("read creds/%s: %v", name, err)
	}
	return s
}

// crmStatus calls the emulator's CRM API with an access token.
func crmStatus(t *testing.T, apiDomain, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, apiDomain+"/crm/v2/org", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// assertNoSecrets fails if the output shows a code, state, callback URL
// or token. The authorization URL, which must be shown, carries the
// state; it is taken out first, so the state may appear there only.
func assertNoSecrets(t *testing.T, e *testEnv, r result, more ...string) {
	t.Helper()
	out := r.stdout + r.stderr
	for _, u := range e.vault.issuedAuthURLs() {
		out = strings.ReplaceAll(out, u, "<authorization url>")
	}
	secrets := append(e.vault.seen(), more...)
	if len(secrets) == 0 {
		t.Fatal("no secrets were collected: the check would prove nothing")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Fatalf("output shows a secret %.12q...:\n%s", s, out)
		}
	}
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not say %q:\n%s", what, w, got)
		}
	}
}

// wantResult checks the exit status, printing the output when it differs.
func wantResult(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s",
			r.code, code, r.stdout, r.stderr)
	}
}

func TestBrowserMode_StoresCredential(t *testing.T) {
	for name, tokenFromFile := range map[string]bool{
		"token from VAULT_TOKEN":    false,
		"token from ~/.vault-token": true,
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			if tokenFromFile {
				t.Setenv("VAULT_TOKEN", "")
				tokenFile := filepath.Join(os.Getenv("HOME"), ".vault-token")
				if err := os.WriteFile(tokenFile, []byte(testVaultToken+"\n"),
					0o600); err != nil {
					t.Fatal(err)
				}
			}

			// Before the real redirect the browser asks for a favicon and
			// replays a stale redirect: neither may end the login.
			b := newBrowser(t)
			var stray []string
			b.visit = func(c *http.Client, u string) (*http.Response, error) {
				for _, p := range []string{"/favicon.ico",
					"/callback?code=1000.stale&state=stale"} {
					resp, err := c.Get("http://" + e.listen + p)
					if err != nil {
						return nil, err
					}
					resp.Body.Close()
					stray = append(stray, fmt.Sprint(resp.StatusCode))
				}
				return c.Get(u)
			}

			r := runCLI(t, nil, nil, b.open, "-name", "office",
				"-listen", e.listen, "-timeout", "20s")
			pages := b.done()
			wantResult(t, r, 0)

			if strings.Join(stray, ",") != "404,400" {
				t.Errorf("stray requests answered %v, want 404 and 400", stray)
			}
			if len(pages) != 1 || !strings.HasPrefix(pages[0], "200 ") {
				t.Fatalf("browser pages %q", pages)
			}
			wantContains(t, "browser page", pages[0],
				"Authorized. You can close this tab.")
			wantContains(t, "stdout", r.stdout,
				`Stored credential "office" at unitycrm/creds/office`,
				"api_domain", e.emu.URL, "accounts_server", "created_at",
				"ZohoCRM.modules.ALL,ZohoCRM.settings.ALL",
				"vault read unitycrm/creds/office")
			wantContains(t, "stderr", r.stderr, e.vault.issuedAuthURLs()[0])

			// The stored credential works: the CRM API takes its token.
			s := readCreds(t, e, "office")
			tok, _ := s.Data["access_token"].(string)
			if got := crmStatus(t, s.Data["api_domain"].(string), tok); got != 200 {
				t.Fatalf("CRM API answered %d to the token read from Vault", got)
			}
			assertNoSecrets(t, e, r, b.redirects()...)
		})
	}
}

// authURLPattern finds the authorization URL the CLI prints.
var authURLPattern = regexp.MustCompile(`http://127\.0\.0\.1:\d+/\S+/auth\?\S+`)

func TestPasteMode_StoresCredential(t *testing.T) {
	e := newTestEnv(t)

	// The person reads the URL in the terminal, approves it in a browser
	// that lands on Postman's callback, and pastes that address.
	stdinR, stdinW := io.Pipe()
	t.Cleanup(func() { stdinR.Close() })
	var once sync.Once
	var pasted string
	stderr := &syncBuffer{}
	stderr.onWrite = func(all string) {
		u := authURLPattern.FindString(all)
		if u == "" {
			return
		}
		once.Do(func() {
			cb, err := e.emu.Approve(u, testUser)
			if err != nil {
				t.Errorf("approve: %v", err)
				return
			}
			pasted = cb
			go fmt.Fprintf(stdinW, "\n  %s  \n", cb)
		})
	}
	noBrowser := func(string) error {
		t.Error("a browser was opened despite -no-browser")
		return nil
	}

	r := runCLI(t, stdinR, stderr, noBrowser, "-name", "office", "-paste",
		"-no-browser", "-timeout", "20s")
	wantResult(t, r, 0)

	if !strings.HasPrefix(pasted, postmanRedirect+"?") {
		t.Fatalf("the browser landed on %.40q..., want Postman's callback", pasted)
	}
	wantContains(t, "stderr", r.stderr, "copy the whole address of the page")
	wantContains(t, "stdout", r.stdout, `Stored credential "office"`,
		"api_domain", e.emu.URL)

	s := readCreds(t, e, "office")
	tok, _ := s.Data["access_token"].(string)
	if got := crmStatus(t, s.Data["api_domain"].(string), tok); got != 200 {
		t.Fatalf("CRM API answered %d to the token read from Vault", got)
	}
	assertNoSecrets(t, e, r, pasted)
}

func TestPasteMode_Refusals(t *testing.T) {
	tests := map[string]struct {
		paste string
		want  []string
	}{
		"user denied": {
			paste: postmanRedirect + "?error=access_denied&state=x",
			want:  []string{`error "access_denied"`, "clicked Deny"},
		},
		"another login's URL": {
			paste: postmanRedirect + "?code=1000.abc&state=not-this-one",
			want:  []string{"answers another authorization"},
		},
		"not a URL": {
			paste: "code=1000.abc",
			want:  []string{"not a URL"},
		},
		"nothing pasted": {
			paste: "",
			want:  []string{"input ended before a URL was pasted"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			r := runCLI(t, strings.NewReader(tc.paste+"\n"), nil,
				func(string) error { return nil }, "-name", "office", "-paste")
			wantResult(t, r, 1)
			wantContains(t, "stderr", r.stderr, tc.want...)
			wantContains(t, "stderr", r.stderr, "unitycrm-login: ")
			if got := e.vault.storedNames(); len(got) != 0 {
				t.Fatalf("stored %v", got)
			}
		})
	}
}

func TestBrowserMode_TimeoutExplains(t *testing.T) {
	e := newTestEnv(t)

	// The person never comes back.
	opened := 0
	r := runCLI(t, nil, nil, func(string) error { opened++; return nil },
		"-name", "office", "-listen", e.listen, "-timeout", "300ms")
	wantResult(t, r, 1)

	if opened != 1 {
		t.Errorf("browser opened %d times, want 1", opened)
	}
	wantContains(t, "stderr", r.stderr,
		"no redirect reached "+e.redirect+" within 300ms",
		"nothing was stored",
		e.redirect+" is listed in unitycrm/config\n    extra_redirect_uris",
		"registered for the client in the API console")
	if got := e.vault.storedNames(); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}

	// The listener is gone once the command returns.
	if c, err := net.Dial("tcp", e.listen); err == nil {
		c.Close()
		t.Fatal("the callback listener is still open")
	}
}

func TestBrowserMode_UserDenies(t *testing.T) {
	e := newTestEnv(t)
	e.emu.SetAutoApprove(false)

	// The browser shows the consent page and the person clicks Deny.
	b := newBrowser(t)
	b.visit = func(c *http.Client, u string) (*http.Response, error) {
		resp, err := c.Get(u)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "deny") {
			return nil, fmt.Errorf("no consent page: %d %s", resp.StatusCode, body)
		}
		au, _ := url.Parse(u)
		form := au.Query()
		form.Set("action", "deny")
		form.Set("user", testUser)
		approve := au.Scheme + "://" + au.Host + au.Path + "/approve"
		return c.PostForm(approve, form)
	}

	r := runCLI(t, nil, nil, b.open, "-name", "office",
		"-listen", e.listen, "-timeout", "20s")
	pages := b.done()
	wantResult(t, r, 1)

	wantContains(t, "stderr", r.stderr, `error "access_denied"`,
		"the user clicked Deny", "nothing was stored")
	if len(pages) != 1 || !strings.HasPrefix(pages[0], "400 ") {
		t.Fatalf("browser pages %q", pages)
	}
	wantContains(t, "browser page", pages[0], "Authorization failed",
		"access_denied")
	if got := e.vault.storedNames(); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
	assertNoSecrets(t, e, r, b.redirects()...)
}

func TestBrowserMode_RedirectNotAllowed(t *testing.T) {
	e := newTestEnv(t)

	// A port other than the one in extra_redirect_uris.
	other := freeLoopbackAddr(t)
	r := runCLI(t, nil, nil, func(string) error {
		t.Error("a browser was opened for a refused URL")
		return nil
	}, "-name", "office", "-listen", other)
	wantResult(t, r, 1)

	// Vault's own words, then what to check.
	wantContains(t, "stderr", r.stderr, "Code: 400",
		"is neither the configured redirect_uri nor one of extra_redirect_uris",
		"vault write unitycrm/config extra_redirect_uris=http://"+other+"/callback")
	if got := e.vault.storedNames(); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
	if c, err := net.Dial("tcp", other); err == nil {
		c.Close()
		t.Fatal("the callback listener is still open")
	}
}

func TestVaultRefusesToken(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv("VAULT_TOKEN", "hvs.wrong")

	r := runCLI(t, nil, nil, func(string) error { return nil },
		"-name", "office", "-listen", e.listen)
	wantResult(t, r, 1)
	wantContains(t, "stderr", r.stderr, "Code: 403", "permission denied")
	if strings.Contains(r.stderr, "extra_redirect_uris") {
		t.Errorf("a refused token got the redirect URI hint:\n%s", r.stderr)
	}
}

func TestUsage(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"all interfaces": {
			[]string{"-name", "x", "-listen", "0.0.0.0:8250"}, "not a loopback"},
		"empty host": {[]string{"-name", "x", "-listen", ":8250"}, "not a loopback"},
		"LAN address": {
			[]string{"-name", "x", "-listen", "192.0.2.10:8250"}, "not a loopback"},
		"host name": {
			[]string{"-name", "x", "-listen", "example.org:8250"}, "not a loopback"},
		"no port":   {[]string{"-name", "x", "-listen", "127.0.0.1"}, "host:port"},
		"port zero": {[]string{"-name", "x", "-listen", "127.0.0.1:0"}, "fixed port"},
		"remote redirect in browser mode": {
			[]string{"-name", "x", "-redirect-uri", postmanRedirect},
			"loopback host"},
		"redirect on another port": {
			[]string{"-name", "x", "-redirect-uri", "http://127.0.0.1:9999/cb"},
			"port of -listen"},
		"no name":        {[]string{"-listen", "127.0.0.1:8250"}, "-name is required"},
		"bad name":       {[]string{"-name", "../sys"}, "-name \"../sys\" is invalid"},
		"zero timeout":   {[]string{"-name", "x", "-timeout", "0s"}, "-timeout"},
		"stray args":     {[]string{"-name", "x", "extra"}, "unexpected arguments"},
		"unknown flag":   {[]string{"-name", "x", "-bogus"}, "-bogus"},
		"bad duration":   {[]string{"-name", "x", "-timeout", "soon"}, "-timeout"},
		"paste, no name": {[]string{"-paste"}, "-name is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			r := runCLI(t, nil, nil, func(string) error {
				t.Error("a browser was opened")
				return nil
			}, tc.args...)
			wantResult(t, r, 2)
			wantContains(t, "stderr", r.stderr, tc.want)
			if n := e.vault.requestCount(); n != 0 {
				t.Fatalf("Vault got %d requests for a bad command line", n)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	r := runCLI(t, nil, nil, nil, "-h")
	wantResult(t, r, 0)
	wantContains(t, "usage", r.stderr, "Usage: unitycrm-login -name <credential>",
		"-paste", "-listen", "extra_redirect_uris", "Exit status")
}

func TestPasteMode_Timeout(t *testing.T) {
	e := newTestEnv(t)

	// The person never pastes.
	stdinR, _ := io.Pipe()
	t.Cleanup(func() { stdinR.Close() })
	r := runCLI(t, stdinR, nil, func(string) error { return nil },
		"-name", "office", "-paste", "-timeout", "200ms")
	wantResult(t, r, 1)
	wantContains(t, "stderr", r.stderr,
		"no URL was pasted within 200ms: nothing was stored")
	if got := e.vault.storedNames(); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
}
