package accountstest

import (
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestAuthRedirect(t *testing.T) {
	type testCase struct {
		opts   Options
		prefix string
		want   func(h *harness) string // the callback without the code
	}
	tests := map[string]testCase{
		"portal path": {
			opts:   Options{AutoApprove: true},
			prefix: portalPrefix,
			want: func(h *harness) string {
				return "&state=xyz&location=us&accounts-server=" +
					url.QueryEscape(h.srv.URL)
			},
		},
		"plain path": {
			opts:   Options{AutoApprove: true},
			prefix: plainPrefix,
			want: func(h *harness) string {
				return "&state=xyz&location=us&accounts-server=" +
					url.QueryEscape(h.srv.URL)
			},
		},
		"other data center": {
			opts: Options{
				AutoApprove:    true,
				Location:       "eu",
				AccountsServer: "https://accounts.zoho.eu",
			},
			prefix: portalPrefix,
			want: func(*harness) string {
				return "&state=xyz&location=eu" +
					"&accounts-server=https%3A%2F%2Faccounts.zoho.eu"
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.opts)

			resp, _ := h.get(strings.TrimPrefix(
				h.authURL(tc.prefix, nil), h.srv.URL))

			if resp.StatusCode != http.StatusFound {
				t.Fatalf("HTTP %d, want 302", resp.StatusCode)
			}
			loc := resp.Header.Get("Location")
			re := regexp.MustCompile(`^` + regexp.QuoteMeta(testRedirect) +
				`\?code=(1000\.[0-9a-f]{32}\.[0-9a-f]{32})(&.*)$`)
			m := re.FindStringSubmatch(loc)
			if m == nil {
				t.Fatalf("Location %q is not redirect_uri?code=...", loc)
			}
			if m[2] != tc.want(h) {
				t.Errorf("Location after the code = %q, want %q", m[2],
					tc.want(h))
			}
			if c := h.srv.Counts(); c.AuthRequests != 1 || c.Approvals != 1 ||
				c.CodesIssued != 1 {
				t.Errorf("counts %+v, want one request, approval and code", c)
			}
		})
	}
}

func TestAuthErrorPage(t *testing.T) {
	type testCase struct {
		params map[string]string
		path   string // instead of an auth URL's
		status int
		code   string
	}
	tests := map[string]testCase{
		"unknown client": {
			params: map[string]string{"client_id": "1000.OTHER"},
			status: http.StatusBadRequest,
			code:   "invalid_client",
		},
		"redirect with a trailing slash": {
			params: map[string]string{"redirect_uri": testRedirect + "/"},
			status: http.StatusBadRequest,
			code:   "invalid_redirect_uri",
		},
		"redirect on another host": {
			params: map[string]string{
				"redirect_uri": "https://evil.example.org/oauth/callback",
			},
			status: http.StatusBadRequest,
			code:   "invalid_redirect_uri",
		},
		"no redirect": {
			params: map[string]string{"redirect_uri": ""},
			status: http.StatusBadRequest,
			code:   "invalid_redirect_uri",
		},
		"another portal": {
			path:   "/clientoauth/v2/999/auth",
			status: http.StatusNotFound,
		},
	}
	for name, tc := range tests {
		for shape, prefix := range prefixes {
			t.Run(name+"/"+shape, func(t *testing.T) {
				h := newHarness(t, Options{AutoApprove: true})
				path := strings.TrimPrefix(h.authURL(prefix, tc.params),
					h.srv.URL)
				if tc.path != "" {
					path = tc.path + "?" + strings.SplitN(path, "?", 2)[1]
				}

				resp, body := h.get(path)

				if resp.StatusCode != tc.status {
					t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.status)
				}
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Errorf("redirected to %q, want an error page", loc)
				}
				ct := resp.Header.Get("Content-Type")
				if !strings.HasPrefix(ct, "text/html") {
					t.Errorf("Content-Type %q, want HTML", ct)
				}
				if !strings.Contains(body, tc.code) {
					t.Errorf("page does not name %q:\n%s", tc.code, body)
				}
				if got := h.srv.Counts().Errors[tc.code]; tc.code != "" &&
					got != 1 {
					t.Errorf("Errors[%q] = %d, want 1", tc.code, got)
				}
			})
		}
	}
}

func TestAuthErrorRedirect(t *testing.T) {
	tests := map[string]struct {
		params map[string]string
		code   string
	}{
		"response type token": {
			params: map[string]string{"response_type": "token"},
			code:   "unsupported_response_type",
		},
		"no scope": {
			params: map[string]string{"scope": ""},
			code:   "invalid_scope",
		},
		"unknown access type": {
			params: map[string]string{"access_type": "forever"},
			code:   "invalid_request",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})

			cb, err := h.srv.Approve(h.authURL(portalPrefix, tc.params), "")

			if err != nil {
				t.Fatal(err)
			}
			want := testRedirect + "?error=" + tc.code + "&state=xyz"
			if cb != want {
				t.Errorf("callback %q, want %q", cb, want)
			}
		})
	}
}

func TestConsentPage(t *testing.T) {
	for shape, prefix := range prefixes {
		t.Run(shape, func(t *testing.T) {
			h := newHarness(t, Options{})

			resp, page := h.get(strings.TrimPrefix(h.authURL(prefix, nil),
				h.srv.URL))

			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d, want the consent page", resp.StatusCode)
			}
			for _, want := range []string{
				`<form method="post" action="` + prefix + `/auth/approve">`,
				`name="action" value="approve">Approve</button>`,
				`name="action" value="deny">Deny</button>`,
				`<input type="email" name="user" value="user@example.org">`,
				`<code>ZohoCRM.org.ALL</code>`,
				`<code>ZohoCRM.users.READ</code>`,
				testClientID,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("consent page lacks %s:\n%s", want, page)
				}
			}

			// Submit the form as a browser would, signed in as someone.
			form := hiddenFields(page)
			form.Set("user", "rabbi@example.org")
			form.Set("action", "approve")
			resp, _ = h.post(prefix+"/auth/approve", form, false)

			if resp.StatusCode != http.StatusFound {
				t.Fatalf("approve: HTTP %d, want 302", resp.StatusCode)
			}
			cb, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if cb.Query().Get("state") != "xyz" {
				t.Errorf("callback %s lost the state", cb)
			}
			ans := h.exchange(prefix, cb.Query().Get("code"))
			if str(ans, "refresh_token") == "" {
				t.Errorf("exchange answered %v, want a refresh token", ans)
			}
			req, _ := http.NewRequest(http.MethodGet,
				h.srv.URL+"/crm/v6/users?type=CurrentUser", nil)
			req.Header.Set("Authorization",
				"Zoho-oauthtoken "+str(ans, "access_token"))
			_, users := h.do(req)
			if !strings.Contains(users, `"email":"rabbi@example.org"`) {
				t.Errorf("current user %s, want rabbi@example.org", users)
			}
		})
	}
}

func TestConsentDeny(t *testing.T) {
	h := newHarness(t, Options{})
	_, page := h.get(strings.TrimPrefix(h.authURL(portalPrefix, nil),
		h.srv.URL))
	form := hiddenFields(page)
	form.Set("action", "deny")

	resp, _ := h.post(portalPrefix+"/auth/approve", form, false)

	want := testRedirect + "?error=access_denied&state=xyz"
	if loc := resp.Header.Get("Location"); loc != want {
		t.Errorf("Location %q, want %q", loc, want)
	}
	c := h.srv.Counts()
	if c.Denials != 1 || c.Approvals != 0 || c.CodesIssued != 0 ||
		c.Errors["access_denied"] != 1 {
		t.Errorf("counts %+v, want one denial and no code", c)
	}
}

func TestCodeThrottle(t *testing.T) {
	h := newHarness(t, Options{})
	approve := func() string {
		cb, err := h.srv.Approve(h.authURL(portalPrefix, nil), "")
		if err != nil {
			t.Fatal(err)
		}
		return cb
	}
	throttled := testRedirect + "?error=access_denied&state=xyz"

	for i := range 4 {
		if cb := approve(); cb == throttled {
			t.Fatalf("code %d throttled, want 4 codes a minute", i+1)
		}
	}
	if cb := approve(); cb != throttled {
		t.Fatalf("fifth code in a minute: %q, want %q", cb, throttled)
	}
	h.clock.Advance(9*time.Minute + 59*time.Second)
	if cb := approve(); cb != throttled {
		t.Errorf("within the 10-minute block: %q, want %q", cb, throttled)
	}
	h.clock.Advance(time.Second)
	if cb := approve(); cb == throttled {
		t.Errorf("after the block: still throttled")
	}
	if got := h.srv.Counts().CodesIssued; got != 5 {
		t.Errorf("CodesIssued = %d, want 5", got)
	}
}

func TestScopeSeparators(t *testing.T) {
	for name, scope := range map[string]string{
		"commas": "ZohoCRM.org.ALL,ZohoCRM.users.READ",
		"spaces": "ZohoCRM.org.ALL ZohoCRM.users.READ",
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})

			ans := h.exchange(portalPrefix, h.code(portalPrefix,
				map[string]string{"scope": scope}))

			if got := str(ans, "scope"); got !=
				"ZohoCRM.org.ALL ZohoCRM.users.READ" {
				t.Errorf("scope %q, want the two scopes space separated", got)
			}
		})
	}
}

func TestApproveRefusal(t *testing.T) {
	h := newHarness(t, Options{})

	_, err := h.srv.Approve(h.authURL(portalPrefix,
		map[string]string{"client_id": "1000.NOPE"}), "")
	var aerr *AuthError
	if !errors.As(err, &aerr) || aerr.Code != "invalid_client" {
		t.Errorf("unknown client: %v, want AuthError invalid_client", err)
	}

	_, err = h.srv.Approve(h.srv.URL+"/oauth/v2/token?client_id=x", "")
	if err == nil || !strings.Contains(err.Error(), "not an auth endpoint") {
		t.Errorf("token URL: %v, want not an auth endpoint", err)
	}
}

// hiddenFields reads the hidden inputs of a consent page.
func hiddenFields(page string) url.Values {
	re := regexp.MustCompile(`<input type="hidden" name="([^"]+)" ` +
		`value="([^"]*)">`)
	form := url.Values{}
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return form
}
