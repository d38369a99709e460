package accountstest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Test fixtures.
const (
	testClientID = "1000.TESTCLIENT00000000000000000000"
	testSecret   = "test-client-secret"
	testRedirect = "https://app.example.org/oauth/callback"
	testScope    = "ZohoCRM.org.ALL,ZohoCRM.users.READ"
	portalPrefix = "/clientoauth/v2/" + DefaultPortal
	plainPrefix  = "/oauth/v2"
)

// prefixes are both path shapes, for tests that run under each.
var prefixes = map[string]string{
	"portal": portalPrefix,
	"plain":  plainPrefix,
}

// harness is a running emulator with one registered client and a fake
// clock.
type harness struct {
	t     *testing.T
	srv   *Server
	clock *Clock
	http  *http.Client // does not follow redirects
}

// newHarness starts an emulator for the test; opts.Now defaults to a fake
// clock.
func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	clock := NewClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	srv := NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddClient(Client{
		ID:           testClientID,
		Secret:       testSecret,
		RedirectURIs: []string{testRedirect},
	})
	return &harness{
		t:     t,
		srv:   srv,
		clock: clock,
		http: &http.Client{
			Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// authURL returns an auth URL under prefix; params override the defaults
// (offline access, prompt=consent, state "xyz") and "" removes one.
func (h *harness) authURL(prefix string, params map[string]string) string {
	q := url.Values{
		"client_id":     {testClientID},
		"response_type": {"code"},
		"redirect_uri":  {testRedirect},
		"scope":         {testScope},
		"access_type":   {"offline"},
		"prompt":        {"consent"},
		"state":         {"xyz"},
	}
	for k, v := range params {
		if v == "" {
			q.Del(k)
			continue
		}
		q.Set(k, v)
	}
	return h.srv.URL + prefix + "/auth?" + q.Encode()
}

// code runs Approve on an auth URL and returns the code of the callback.
func (h *harness) code(prefix string, params map[string]string) string {
	h.t.Helper()
	cb, err := h.srv.Approve(h.authURL(prefix, params), "")
	if err != nil {
		h.t.Fatalf("Approve: %v", err)
	}
	u, err := url.Parse(cb)
	if err != nil {
		h.t.Fatalf("callback %q: %v", cb, err)
	}
	code := u.Query().Get("code")
	if code == "" {
		h.t.Fatalf("callback %q has no code", cb)
	}
	return code
}

// do sends a request and returns the status and body.
func (h *harness) do(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read %s: %v", req.URL.Path, err)
	}
	return resp, string(b)
}

// get sends a GET to path on the emulator.
func (h *harness) get(path string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

// post sends form to path, in the body or (inQuery) in the query string.
func (h *harness) post(path string, form url.Values,
	inQuery bool) (*http.Response, string) {
	h.t.Helper()
	target := h.srv.URL + path
	var body io.Reader
	if inQuery {
		target += "?" + form.Encode()
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(http.MethodPost, target, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if !inQuery {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return h.do(req)
}

// token posts form to the token endpoint under prefix and decodes the JSON
// answer, which must come with HTTP 200.
func (h *harness) token(prefix string, form url.Values) map[string]any {
	h.t.Helper()
	resp, body := h.post(prefix+"/token", form, false)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("token: HTTP %d %s", resp.StatusCode, body)
	}
	return decode(h.t, body)
}

// exchange exchanges a code made for testRedirect.
func (h *harness) exchange(prefix, code string) map[string]any {
	h.t.Helper()
	return h.token(prefix, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"client_id":     {testClientID},
		"client_secret": {testSecret},
		"redirect_uri":  {testRedirect},
	})
}

// refresh mints an access token from a refresh token.
func (h *harness) refresh(prefix, refreshToken string) map[string]any {
	h.t.Helper()
	return h.token(prefix, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"client_id":     {testClientID},
		"client_secret": {testSecret},
	})
}

// offlineTokens runs the whole flow and returns the refresh token and the
// first access token.
func (h *harness) offlineTokens() (string, string) {
	h.t.Helper()
	ans := h.exchange(portalPrefix, h.code(portalPrefix, nil))
	rt, _ := ans["refresh_token"].(string)
	at, _ := ans["access_token"].(string)
	if rt == "" || at == "" {
		h.t.Fatalf("exchange answered %v, want both tokens", ans)
	}
	return rt, at
}

// apiStatus calls GET /crm/v6/org with token and returns the HTTP status.
func (h *harness) apiStatus(token string) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+"/crm/v6/org", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	resp, _ := h.do(req)
	return resp.StatusCode
}

// decode parses a JSON object.
func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not a JSON object: %q: %v", body, err)
	}
	return m
}

// str returns m[k] as a string, or "" if it is not one.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
