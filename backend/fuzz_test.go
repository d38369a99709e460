package backend

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzCallbackURL checks the redirect parser: either a message for the
// caller, or a code and state that really are the URL's parameters.
func FuzzCallbackURL(f *testing.F) {
	for _, s := range []string{
		"https://app.example.org/oauth/callback?code=1000.abc&state=xyz&location=us&accounts-server=https%3A%2F%2Faccounts.zoho.com",
		"https://oauth.pstmn.io/v1/callback?state=s&code=1000.c&location=eu&accounts-server=https%3A%2F%2Faccounts.zoho.eu",
		"http://127.0.0.1:8250/callback?error=access_denied&state=s",
		"https://a/cb?code=&state=",
		"code=1&state=2",
		"https://a/cb?code=1&code=2&state=3",
		"https://a/cb#code=1&state=2",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		in := &credsInput{}
		msg := in.parseCallback(raw)
		if msg != "" {
			if in.code != "" && strings.Contains(msg, in.code) && len(in.code) > 3 {
				t.Fatalf("message %q shows the code", msg)
			}
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted an unparsable URL %q", raw)
		}
		q := u.Query()
		if in.code == "" || in.state == "" || in.code != strings.TrimSpace(q.Get("code")) ||
			in.state != strings.TrimSpace(q.Get("state")) {
			t.Fatalf("parsed code %q state %q from %q", in.code, in.state, raw)
		}
	})
}

// FuzzConfigValidate checks that validation never panics and that any
// accepted config has endpoints a client secret may travel to.
func FuzzConfigValidate(f *testing.F) {
	f.Add("1000.C", "s", "https://crm.chabad.comeunity.me", "10023122998", "", "https://app/cb", "")
	f.Add("1000.C", "s", "http://127.0.0.1:8085", "", "http://127.0.0.1:1/token", "", "http://localhost:9")
	f.Add("", "", "http://accounts.zoho.com", "x", "ftp://a", "not a url", "https://a/path")
	f.Fuzz(func(t *testing.T, id, secret, accounts, portal, tokenURL, redirect, allowed string) {
		c := &configEntry{
			ClientID: id, ClientSecret: secret, AccountsURL: accounts, PortalID: portal,
			TokenURL: tokenURL, RedirectURI: redirect, Scopes: defaultScopes,
			RequestTimeout: defaultRequestTimeout, MinTokenTTL: defaultMinTokenTTL,
			LeaseSafetyMargin: defaultLeaseMargin, MintLimit: defaultMintLimit,
			MintWindow: defaultMintWindow, MaxLiveTokens: defaultMaxLiveTokens,
		}
		if allowed != "" {
			c.AllowedAccountsServers = []string{allowed}
		}
		problems := c.validate()
		for _, p := range problems {
			if secret != "" && len(secret) > 3 && strings.Contains(p, secret) {
				t.Fatalf("problem %q shows the secret", p)
			}
		}
		if len(problems) > 0 {
			return
		}
		e := c.endpoints()
		for _, raw := range append([]string{e.TokenURL, e.RevokeURL}, c.allowedOrigins()...) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("accepted endpoint %q does not parse", raw)
			}
			if u.Scheme != "https" && !isLoopback(u.Hostname()) {
				t.Fatalf("accepted plain-http endpoint %q", raw)
			}
		}
		_ = time.Second
	})
}
