package accountstest

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tokenPattern matches the shape of the provider's tokens.
var tokenPattern = regexp.MustCompile(`^1000\.[0-9a-f]{32}\.[0-9a-f]{32}$`)

func TestTokenErrors(t *testing.T) {
	type testCase struct {
		form func(h *harness) url.Values
		want string
	}
	codeForm := func(h *harness) url.Values {
		return url.Values{
			"grant_type":    {"authorization_code"},
			"code":          {h.code(portalPrefix, nil)},
			"client_id":     {testClientID},
			"client_secret": {testSecret},
			"redirect_uri":  {testRedirect},
		}
	}
	with := func(k, v string) func(h *harness) url.Values {
		return func(h *harness) url.Values {
			f := codeForm(h)
			f.Set(k, v)
			return f
		}
	}
	tests := map[string]testCase{
		"unknown client": {
			form: with("client_id", "1000.UNKNOWN"), want: "invalid_client",
		},
		"unknown client before a bad code": {
			form: func(h *harness) url.Values {
				f := codeForm(h)
				f.Set("client_id", "1000.UNKNOWN")
				f.Set("code", "1000.bad")
				return f
			},
			want: "invalid_client",
		},
		"wrong secret": {
			form: with("client_secret", "guess"), want: "invalid_client_secret",
		},
		"no secret": {
			form: with("client_secret", ""), want: "invalid_client_secret",
		},
		"wrong secret before a bad code": {
			form: func(h *harness) url.Values {
				f := codeForm(h)
				f.Set("client_secret", "guess")
				f.Set("code", "1000.bad")
				return f
			},
			want: "invalid_client_secret",
		},
		"unknown code": {
			form: with("code", "1000.0000.0000"), want: "invalid_code",
		},
		"redirect with a trailing slash": {
			form: with("redirect_uri", testRedirect+"/"),
			want: "invalid_redirect_uri",
		},
		"no redirect": {
			form: with("redirect_uri", ""), want: "invalid_redirect_uri",
		},
		"unknown grant type": {
			form: with("grant_type", "password"), want: "unsupported_grant_type",
		},
		"no grant type": {
			form: with("grant_type", ""), want: "unsupported_grant_type",
		},
		"unknown refresh token": {
			form: func(*harness) url.Values {
				return url.Values{
					"grant_type":    {"refresh_token"},
					"refresh_token": {"1000.dead.beef"},
					"client_id":     {testClientID},
					"client_secret": {testSecret},
				}
			},
			want: "invalid_code",
		},
		"client credentials without soid": {
			form: func(*harness) url.Values {
				return url.Values{
					"grant_type":    {"client_credentials"},
					"scope":         {"ZohoCRM.org.ALL"},
					"client_id":     {testClientID},
					"client_secret": {testSecret},
				}
			},
			want: "missing_org_info",
		},
	}
	for name, tc := range tests {
		for shape, prefix := range prefixes {
			t.Run(name+"/"+shape, func(t *testing.T) {
				h := newHarness(t, Options{})

				resp, body := h.post(prefix+"/token", tc.form(h), false)

				if resp.StatusCode != http.StatusOK {
					t.Errorf("HTTP %d, want 200", resp.StatusCode)
				}
				want := `{"error":"` + tc.want + `"}` + "\n"
				if body != want {
					t.Errorf("answer %q, want %q", body, want)
				}
				c := h.srv.Counts()
				if c.Errors[tc.want] != 1 || c.TokenRequests != 1 ||
					c.CodeExchanges+c.Refreshes+c.ClientCredentials != 0 {
					t.Errorf("counts %+v, want one request and one %s", c,
						tc.want)
				}
			})
		}
	}
}

func TestTokenParams(t *testing.T) {
	tests := map[string]struct {
		inQuery []string // parameters sent in the query string
	}{
		"all in the body": {},
		"all in the query": {inQuery: []string{
			"grant_type", "code", "client_id", "client_secret", "redirect_uri",
		}},
		"secret in the query": {inQuery: []string{"client_secret"}},
	}
	for name, tc := range tests {
		for shape, prefix := range prefixes {
			t.Run(name+"/"+shape, func(t *testing.T) {
				h := newHarness(t, Options{})
				body := url.Values{
					"grant_type":    {"authorization_code"},
					"code":          {h.code(prefix, nil)},
					"client_id":     {testClientID},
					"client_secret": {testSecret},
					"redirect_uri":  {testRedirect},
				}
				query := url.Values{}
				for _, k := range tc.inQuery {
					query[k] = body[k]
					delete(body, k)
				}
				req, err := http.NewRequest(http.MethodPost,
					h.srv.URL+prefix+"/token?"+query.Encode(),
					strings.NewReader(body.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type",
					"application/x-www-form-urlencoded")

				resp, raw := h.do(req)

				ans := decode(t, raw)
				if !tokenPattern.MatchString(str(ans, "access_token")) ||
					!tokenPattern.MatchString(str(ans, "refresh_token")) {
					t.Errorf("answer %s, want both tokens", raw)
				}
				ct := resp.Header.Get("Content-Type")
				if ct != "application/json;charset=UTF-8" {
					t.Errorf("Content-Type %q", ct)
				}
			})
		}
	}
}

func TestCodeExchangeAnswer(t *testing.T) {
	h := newHarness(t, Options{})

	ans := h.exchange(portalPrefix, h.code(portalPrefix, nil))

	want := map[string]any{
		"api_domain": h.srv.URL,
		"token_type": "Bearer",
		"expires_in": float64(3600),
		"scope":      "ZohoCRM.org.ALL ZohoCRM.users.READ",
	}
	for k, v := range want {
		if ans[k] != v {
			t.Errorf("%s = %v, want %v", k, ans[k], v)
		}
	}
	if _, ok := ans["expires_in_sec"]; ok {
		t.Errorf("expires_in_sec present without LegacyExpiry: %v", ans)
	}
	if c := h.srv.Counts(); c.CodeExchanges != 1 {
		t.Errorf("CodeExchanges = %d, want 1", c.CodeExchanges)
	}
}

func TestLegacyExpiry(t *testing.T) {
	h := newHarness(t, Options{LegacyExpiry: true})
	rt, _ := h.offlineTokens()

	ans := h.refresh(portalPrefix, rt)

	if ans["expires_in"] != float64(3600000) ||
		ans["expires_in_sec"] != float64(3600) {
		t.Errorf("answer %v, want expires_in 3600000 and expires_in_sec 3600",
			ans)
	}
}

func TestCodeSingleUse(t *testing.T) {
	h := newHarness(t, Options{})
	code := h.code(portalPrefix, nil)

	// A refused exchange leaves the code usable.
	failed := h.token(portalPrefix, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"client_id":     {testClientID},
		"client_secret": {testSecret},
		"redirect_uri":  {testRedirect + "/"},
	})
	first := h.exchange(portalPrefix, code)
	second := h.exchange(portalPrefix, code)

	if str(failed, "error") != "invalid_redirect_uri" {
		t.Errorf("mismatched redirect: %v", failed)
	}
	if str(first, "access_token") == "" {
		t.Errorf("first use: %v, want tokens", first)
	}
	if str(second, "error") != "invalid_code" {
		t.Errorf("second use: %v, want invalid_code", second)
	}
}

func TestCodeExpiry(t *testing.T) {
	tests := map[string]struct {
		ttl  time.Duration // Options.CodeTTL
		wait time.Duration
		want string // error, or "" for tokens
	}{
		"just in time":      {wait: 2*time.Minute - time.Second},
		"two minutes":       {wait: 2 * time.Minute, want: "invalid_code"},
		"late":              {wait: time.Hour, want: "invalid_code"},
		"one minute TTL":    {ttl: time.Minute, wait: time.Minute, want: "invalid_code"},
		"three minutes TTL": {ttl: 3 * time.Minute, wait: 2 * time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{CodeTTL: tc.ttl})
			code := h.code(portalPrefix, nil)
			h.clock.Advance(tc.wait)

			ans := h.exchange(portalPrefix, code)

			if got := str(ans, "error"); got != tc.want {
				t.Errorf("error %q, want %q (answer %v)", got, tc.want, ans)
			}
		})
	}
}

func TestRefreshTokenIssuance(t *testing.T) {
	type step struct {
		access, prompt string
		wantRefresh    bool
	}
	tests := map[string][]step{
		"offline with consent": {
			{"offline", "consent", true},
			{"offline", "consent", true},
		},
		"offline on first consent only": {
			{"offline", "", true},
			{"offline", "", false},
			{"offline", "consent", true},
		},
		"online never": {
			{"online", "consent", false},
			{"", "consent", false},
		},
		"online first, then offline without consent": {
			{"online", "", false},
			{"offline", "", false},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{CodeLimit: 100})
			for i, s := range steps {
				ans := h.exchange(portalPrefix, h.code(portalPrefix,
					map[string]string{
						"access_type": s.access, "prompt": s.prompt,
					}))

				if str(ans, "access_token") == "" {
					t.Fatalf("step %d: %v, want an access token", i, ans)
				}
				_, got := ans["refresh_token"]
				if got != s.wantRefresh {
					t.Errorf("step %d (%s, prompt %q): refresh token %v, "+
						"want %v", i, s.access, s.prompt, got, s.wantRefresh)
				}
			}
		})
	}
}

func TestSelfClientCode(t *testing.T) {
	tests := map[string]struct {
		send     bool // send redirect_uri
		redirect string
		want     string
	}{
		"without redirect":    {},
		"with empty redirect": {send: true},
		"with a redirect": {
			send: true, redirect: testRedirect, want: "invalid_redirect_uri",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			code := h.srv.SelfClientCode(testClientID,
				[]string{"ZohoCRM.org.ALL"})
			form := url.Values{
				"grant_type":    {"authorization_code"},
				"code":          {code},
				"client_id":     {testClientID},
				"client_secret": {testSecret},
			}
			if tc.send {
				form.Set("redirect_uri", tc.redirect)
			}

			ans := h.token(portalPrefix, form)

			if got := str(ans, "error"); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
			if tc.want == "" && str(ans, "refresh_token") == "" {
				t.Errorf("answer %v, want a refresh token", ans)
			}
		})
	}
}

func TestRefreshAnswer(t *testing.T) {
	h := newHarness(t, Options{})
	rt, first := h.offlineTokens()

	ans := h.refresh(portalPrefix, rt)

	if _, ok := ans["refresh_token"]; ok {
		t.Errorf("refresh answer carries a refresh token: %v", ans)
	}
	at := str(ans, "access_token")
	if !tokenPattern.MatchString(at) || at == first {
		t.Errorf("access token %q, want a new one", at)
	}
	if ans["expires_in"] != float64(3600) || ans["api_domain"] != h.srv.URL {
		t.Errorf("answer %v", ans)
	}
	if h.apiStatus(at) != http.StatusOK || h.apiStatus(first) != http.StatusOK {
		t.Errorf("both access tokens should work at the CRM API")
	}
	if got := h.srv.LiveAccessTokens(rt); got != 2 {
		t.Errorf("LiveAccessTokens = %d, want 2", got)
	}
	if c := h.srv.Counts(); c.Refreshes != 1 || c.CodeExchanges != 1 {
		t.Errorf("counts %+v, want one exchange and one refresh", c)
	}
}

func TestMintLimit(t *testing.T) {
	h := newHarness(t, Options{})
	rt, _ := h.offlineTokens()
	throttled := map[string]any{
		"error": "Access Denied",
		"error_description": "You have made too many requests " +
			"continuously. Please try again after some time.",
		"status": "failure",
	}
	isThrottled := func(ans map[string]any) bool {
		for k, v := range throttled {
			if ans[k] != v {
				return false
			}
		}
		return len(ans) == len(throttled)
	}

	// Ten mints within ten minutes, the last one at 5 minutes.
	for i := range 10 {
		if ans := h.refresh(portalPrefix, rt); str(ans, "access_token") == "" {
			t.Fatalf("mint %d: %v", i+1, ans)
		}
		if i == 4 {
			h.clock.Advance(5 * time.Minute)
		}
	}
	if ans := h.refresh(portalPrefix, rt); !isThrottled(ans) {
		t.Fatalf("eleventh mint: %v, want the throttle error", ans)
	}

	// The block runs ten minutes from the refused request, past the end
	// of the window.
	h.clock.Advance(9 * time.Minute)
	if ans := h.refresh(portalPrefix, rt); !isThrottled(ans) {
		t.Errorf("nine minutes into the block: %v, want the throttle", ans)
	}
	h.clock.Advance(time.Minute)
	if ans := h.refresh(portalPrefix, rt); str(ans, "access_token") == "" {
		t.Errorf("after the block: %v, want an access token", ans)
	}
	c := h.srv.Counts()
	if c.Refreshes != 11 || c.Errors["Access Denied"] != 2 {
		t.Errorf("counts %+v, want 11 refreshes and 2 throttled", c)
	}
	if !h.srv.IsLive(rt) {
		t.Errorf("the throttle killed the refresh token")
	}
}

func TestLiveTokenEviction(t *testing.T) {
	h := newHarness(t, Options{MintLimit: 100})
	rt, first := h.offlineTokens()
	second := str(h.refresh(portalPrefix, rt), "access_token")

	// The exchange and the refresh above made two; 13 more make 15.
	for range 13 {
		h.refresh(portalPrefix, rt)
	}
	if h.apiStatus(first) != http.StatusOK {
		t.Fatalf("first token dead with 15 live, want it live")
	}
	last := str(h.refresh(portalPrefix, rt), "access_token")

	if got := h.apiStatus(first); got != http.StatusUnauthorized {
		t.Errorf("oldest token after the 16th: HTTP %d, want 401", got)
	}
	if h.apiStatus(second) != http.StatusOK || h.apiStatus(last) != http.StatusOK {
		t.Errorf("younger tokens were evicted too")
	}
	if got := h.srv.LiveAccessTokens(rt); got != 15 {
		t.Errorf("LiveAccessTokens = %d, want 15", got)
	}
}

func TestAccessTokenExpiry(t *testing.T) {
	h := newHarness(t, Options{})
	rt, at := h.offlineTokens()

	h.clock.Advance(time.Hour - time.Second)
	live := h.apiStatus(at)
	h.clock.Advance(time.Second)
	dead := h.apiStatus(at)

	if live != http.StatusOK || dead != http.StatusUnauthorized {
		t.Errorf("API status %d before and %d after an hour, want 200, 401",
			live, dead)
	}
	if h.srv.IsLive(at) || h.srv.LiveAccessTokens(rt) != 0 {
		t.Errorf("expired access token still counted live")
	}
	if !h.srv.IsLive(rt) {
		t.Errorf("refresh token expired with its access token")
	}
}

func TestRefreshTokenLimit(t *testing.T) {
	h := newHarness(t, Options{CodeLimit: 100})
	var refresh, access []string
	for range 21 {
		rt, at := h.offlineTokens()
		refresh = append(refresh, rt)
		access = append(access, at)
	}

	if got := h.srv.RefreshTokens(testClientID, DefaultUser); got != 20 {
		t.Errorf("RefreshTokens = %d, want 20", got)
	}
	if ans := h.refresh(portalPrefix, refresh[0]); str(ans, "error") !=
		"invalid_code" {
		t.Errorf("oldest refresh token: %v, want invalid_code", ans)
	}
	if got := h.apiStatus(access[0]); got != http.StatusUnauthorized {
		t.Errorf("oldest token's access token: HTTP %d, want 401", got)
	}
	if ans := h.refresh(portalPrefix, refresh[1]); str(ans, "access_token") ==
		"" {
		t.Errorf("second oldest refresh token: %v, want it live", ans)
	}
	if h.apiStatus(access[1]) != http.StatusOK {
		t.Errorf("second oldest access token died")
	}
}

func TestRefreshTokenLimitCountsIssued(t *testing.T) {
	h := newHarness(t, Options{MaxRefreshTokens: 3})
	old := h.srv.IssueRefreshToken(testClientID, "", []string{"ZohoCRM.org.ALL"})
	h.srv.IssueRefreshToken(testClientID, "", []string{"ZohoCRM.org.ALL"})
	h.srv.IssueRefreshToken(testClientID, "", []string{"ZohoCRM.org.ALL"})
	other := h.srv.IssueRefreshToken(testClientID, "other@example.org", nil)

	rt, _ := h.offlineTokens()

	if h.srv.IsLive(old) || !h.srv.IsLive(rt) || !h.srv.IsLive(other) {
		t.Errorf("live: oldest %v, newest %v, other user's %v; want "+
			"false, true, true", h.srv.IsLive(old), h.srv.IsLive(rt),
			h.srv.IsLive(other))
	}
}

func TestClientCredentials(t *testing.T) {
	h := newHarness(t, Options{})

	ans := h.token(portalPrefix, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {testClientID},
		"client_secret": {testSecret},
		"scope":         {"ZohoCRM.org.ALL"},
		"soid":          {"ZohoCRM.10023122998"},
	})

	if _, ok := ans["refresh_token"]; ok {
		t.Errorf("client credentials answer has a refresh token: %v", ans)
	}
	if got := h.apiStatus(str(ans, "access_token")); got != http.StatusOK {
		t.Errorf("access token at the API: HTTP %d, want 200", got)
	}
	if c := h.srv.Counts(); c.ClientCredentials != 1 {
		t.Errorf("ClientCredentials = %d, want 1", c.ClientCredentials)
	}
}
