package accounts

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testSecret  = "client-secret-0123456789"
	testRefresh = "1000.refresh.abcdef"
	testCode    = "1000.code.123456"
)

// canned answers every request with one status, content type and body,
// and records what it was sent.
type canned struct {
	status int
	ctype  string
	body   string
	delay  time.Duration

	mu   sync.Mutex
	got  []url.Values
	auth []string
	path []string
}

func (c *canned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(raw))
	c.mu.Lock()
	c.got = append(c.got, form)
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	c.path = append(c.path, r.URL.Path)
	c.mu.Unlock()
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-r.Context().Done():
			return
		}
	}
	ctype := c.ctype
	if ctype == "" {
		ctype = "application/json;charset=UTF-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(c.status)
	io.WriteString(w, c.body)
}

func newTestClient(t *testing.T, h http.Handler) (*Client, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := NewClient(Config{
		ClientID:     "1000.CLIENT",
		ClientSecret: testSecret,
		Endpoints:    DefaultEndpoints(srv.URL, "10023122998"),
		Timeout:      500 * time.Millisecond,
		Now:          func() time.Time { return now },
	})
	return c, srv.URL
}

func TestTokenAnswers(t *testing.T) {
	cases := map[string]struct {
		status   int
		ctype    string
		body     string
		op       string // "exchange" or "refresh"
		kind     Kind
		life     time.Duration
		domain   string
		scopes   string
		temprary bool
	}{
		"success": {
			status: 200, op: "exchange", life: time.Hour, domain: "https://www.zohoapis.com",
			body: `{"access_token":"1000.a","refresh_token":"1000.r","api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600}`,
		},
		"legacy milliseconds with expires_in_sec": {
			status: 200, op: "refresh", life: time.Hour, domain: "https://api.zoho.eu",
			body: `{"access_token":"1000.a","api_domain":"https://api.zoho.eu","token_type":"Bearer","expires_in":3600000,"expires_in_sec":3600}`,
		},
		"legacy milliseconds alone": {
			status: 200, op: "refresh", life: time.Hour,
			body: `{"access_token":"1000.a","expires_in":3600000}`,
		},
		"expires_in_sec wins": {
			status: 200, op: "refresh", life: 30 * time.Minute,
			body: `{"access_token":"1000.a","expires_in":3600,"expires_in_sec":1800}`,
		},
		"scope space separated": {
			status: 200, op: "refresh", life: time.Hour, scopes: "ZohoCRM.modules.ALL,ZohoCRM.org.ALL",
			body: `{"access_token":"1000.a","expires_in":3600,"scope":"ZohoCRM.modules.ALL ZohoCRM.org.ALL"}`,
		},
		"invalid_code on exchange": {
			status: 200, op: "exchange", kind: KindInvalidCode, body: `{"error":"invalid_code"}`,
		},
		"invalid_code on refresh is a revoked token": {
			status: 200, op: "refresh", kind: KindRevoked, body: `{"error":"invalid_code"}`,
		},
		"invalid_token on refresh is a revoked token": {
			status: 400, op: "refresh", kind: KindRevoked, body: `{"error":"invalid_token"}`,
		},
		"invalid_client": {
			status: 200, op: "exchange", kind: KindInvalidClient, body: `{"error":"invalid_client"}`,
		},
		"invalid_client_secret": {
			status: 200, op: "refresh", kind: KindInvalidClientSecret, body: `{"error":"invalid_client_secret"}`,
		},
		"invalid_redirect_uri": {
			status: 200, op: "exchange", kind: KindInvalidRedirectURI, body: `{"error":"invalid_redirect_uri"}`,
		},
		"Access Denied throttle": {
			status: 200, op: "refresh", kind: KindThrottled,
			body: `{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}`,
		},
		"localized throttle": {
			status: 200, op: "refresh", kind: KindThrottled,
			body: `{"error_description":"You have made too many requests continuously.","error":"拒绝访问","status":"failure"}`,
		},
		"localized throttle without description": {
			status: 200, op: "refresh", kind: KindThrottled, body: `{"error":"拒绝访问"}`,
		},
		"access_denied": {
			status: 200, op: "exchange", kind: KindAccessDenied, body: `{"error":"access_denied"}`,
		},
		"unknown error": {
			status: 200, op: "refresh", kind: KindUnknown, body: `{"error":"something_new"}`,
		},
		"neither token nor error": {
			status: 200, op: "refresh", kind: KindMalformed, temprary: true, body: `{"status":"ok"}`,
		},
		"truncated json": {
			status: 200, op: "refresh", kind: KindMalformed, temprary: true, body: `{"access_token":"1000.a","exp`,
		},
		"html with 200": {
			status: 200, op: "refresh", kind: KindMalformed, temprary: true, ctype: "text/html",
			body: `<html><body>Maintenance</body></html>`,
		},
		"html 502": {
			status: 502, op: "refresh", kind: KindUnavailable, temprary: true, ctype: "text/html",
			body: `<html><body>Bad gateway</body></html>`,
		},
		"503 json": {
			status: 503, op: "exchange", kind: KindUnavailable, temprary: true, body: `{}`,
		},
		"negative expiry": {
			status: 200, op: "refresh", kind: KindMalformed, temprary: true,
			body: `{"access_token":"1000.a","expires_in":-5}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := &canned{status: tc.status, ctype: tc.ctype, body: tc.body}
			c, _ := newTestClient(t, h)

			var tok *Token
			var err error
			if tc.op == "exchange" {
				tok, err = c.Exchange(context.Background(), testCode, "https://app/cb", "")
			} else {
				tok, err = c.Refresh(context.Background(), testRefresh, "")
			}

			if tc.life != 0 {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if tok.ExpiresIn != tc.life {
					t.Fatalf("life %v, want %v", tok.ExpiresIn, tc.life)
				}
				if tc.domain != "" && tok.APIDomain != tc.domain {
					t.Fatalf("api_domain %q", tok.APIDomain)
				}
				if tc.scopes != "" && strings.Join(tok.Scopes, ",") != tc.scopes {
					t.Fatalf("scopes %v", tok.Scopes)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if ae.Kind != tc.kind || ae.Temporary() != tc.temprary {
				t.Fatalf("kind %v temporary %v, want %v %v", ae.Kind, ae.Temporary(), tc.kind, tc.temprary)
			}
			for _, secret := range []string{testSecret, testRefresh, testCode, "Maintenance"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q shows %q", err, secret)
				}
			}
		})
	}
}

func TestRequestShapes(t *testing.T) {
	h := &canned{status: 200, body: `{"access_token":"1000.a","refresh_token":"1000.r","expires_in":3600}`}
	c, base := newTestClient(t, h)

	if _, err := c.Exchange(context.Background(), testCode, "https://app/cb", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exchange(context.Background(), testCode, "", ""); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Refresh(context.Background(), testRefresh, "")
	if err != nil {
		t.Fatal(err)
	}

	want := []url.Values{
		{"grant_type": {"authorization_code"}, "code": {testCode}, "redirect_uri": {"https://app/cb"},
			"client_id": {"1000.CLIENT"}, "client_secret": {testSecret}},
		{"grant_type": {"authorization_code"}, "code": {testCode},
			"client_id": {"1000.CLIENT"}, "client_secret": {testSecret}},
		{"grant_type": {"refresh_token"}, "refresh_token": {testRefresh},
			"client_id": {"1000.CLIENT"}, "client_secret": {testSecret}},
	}
	for i, w := range want {
		if h.got[i].Encode() != w.Encode() {
			t.Errorf("request %d body %v, want %v", i, h.got[i], w)
		}
		if h.auth[i] != "" {
			t.Errorf("request %d used HTTP auth %q: parameters belong in the body", i, h.auth[i])
		}
		if h.path[i] != "/clientoauth/v2/10023122998/token" {
			t.Errorf("request %d path %s", i, h.path[i])
		}
	}
	_ = base
	// A refresh answer naming another refresh token is rotation; one
	// naming none keeps the stored one, reported as empty.
	if tok.RefreshToken != "1000.r" {
		t.Errorf("rotated refresh token %q not reported", tok.RefreshToken)
	}
}

func TestRefreshWithoutRotation(t *testing.T) {
	h := &canned{status: 200, body: `{"access_token":"1000.a","expires_in":3600}`}
	c, _ := newTestClient(t, h)
	tok, err := c.Refresh(context.Background(), testRefresh, "")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Fatalf("refresh answer without refresh_token reported %q", tok.RefreshToken)
	}
}

func TestTimeout(t *testing.T) {
	h := &canned{status: 200, body: `{}`, delay: 5 * time.Second}
	c, _ := newTestClient(t, h)

	start := time.Now()
	_, err := c.Refresh(context.Background(), testRefresh, "")
	if KindOf(err) != KindTimeout {
		t.Fatalf("error %v, want a timeout", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("the request ran %v past its 500ms timeout", time.Since(start))
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := NewClient(Config{ClientID: "x", ClientSecret: "y",
		Endpoints: DefaultEndpoints(base, ""), Timeout: time.Second})
	_, err := c.Refresh(context.Background(), testRefresh, "")
	if KindOf(err) != KindUnavailable {
		t.Fatalf("error %v, want unavailable", err)
	}
}

func TestRevokeAnswers(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
		kind   Kind // KindUnknown with ok means success
		ok     bool
	}{
		"success":          {200, `{"status":"success"}`, 0, true},
		"unknown token":    {400, `{"status":"failure","error":"invalid_token"}`, KindInvalidToken, false},
		"bare 400":         {400, ``, KindInvalidToken, false},
		"throttled in 200": {200, `{"error":"Access Denied","status":"failure"}`, KindThrottled, false},
		"outage":           {503, `<html></html>`, KindUnavailable, false},
		"garbage":          {200, `<html></html>`, KindMalformed, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := &canned{status: tc.status, body: tc.body}
			c, _ := newTestClient(t, h)
			err := c.Revoke(context.Background(), testRefresh, "")
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
			} else if KindOf(err) != tc.kind {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			if h.got[0].Get("token") != testRefresh || h.path[0] != "/clientoauth/v2/10023122998/token/revoke" {
				t.Fatalf("revoke sent %v to %s", h.got[0], h.path[0])
			}
		})
	}
}

func TestAuthCodeURL(t *testing.T) {
	c := NewClient(Config{ClientID: "1000.CLIENT", ClientSecret: testSecret,
		Endpoints: DefaultEndpoints("https://crm.chabad.comeunity.me", "10023122998")})
	raw := c.AuthCodeURL(AuthCodeRequest{
		RedirectURI: "https://oauth.pstmn.io/v1/callback",
		Scopes:      []string{"ZohoCRM.modules.ALL", "ZohoCRM.org.ALL"},
		State:       "st", AccessType: "offline", Prompt: "consent",
	})
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "crm.chabad.comeunity.me" || u.Path != "/clientoauth/v2/10023122998/auth" {
		t.Fatalf("url %s", raw)
	}
	q := u.Query()
	if q.Get("scope") != "ZohoCRM.modules.ALL,ZohoCRM.org.ALL" || q.Get("access_type") != "offline" ||
		q.Get("prompt") != "consent" || q.Get("response_type") != "code" || q.Get("state") != "st" {
		t.Fatalf("query %v", q)
	}
	if strings.Contains(raw, testSecret) {
		t.Fatal("the URL carries the client secret")
	}
}

func TestAtOrigin(t *testing.T) {
	got, err := AtOrigin("https://crm.chabad.comeunity.me/clientoauth/v2/1/token", "https://accounts.zoho.eu")
	if err != nil || got != "https://accounts.zoho.eu/clientoauth/v2/1/token" {
		t.Fatalf("%s %v", got, err)
	}
}
