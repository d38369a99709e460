package accountstest

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRevokeRefreshToken(t *testing.T) {
	paths := []string{
		portalPrefix + "/token/revoke",
		portalPrefix + "/auth/token/revoke",
		plainPrefix + "/token/revoke",
	}
	for _, path := range paths {
		for _, inQuery := range []bool{false, true} {
			name := path + "/body"
			if inQuery {
				name = path + "/query"
			}
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, Options{})
				rt, first := h.offlineTokens()
				second := str(h.refresh(portalPrefix, rt), "access_token")

				resp, body := h.post(path, url.Values{"token": {rt}}, inQuery)

				if resp.StatusCode != http.StatusOK ||
					body != `{"status":"success"}`+"\n" {
					t.Fatalf("revoke: HTTP %d %q, want 200 success",
						resp.StatusCode, body)
				}
				for _, at := range []string{first, second} {
					if got := h.apiStatus(at); got != http.StatusUnauthorized {
						t.Errorf("access token after revoke: HTTP %d, "+
							"want 401", got)
					}
				}
				ans := h.refresh(portalPrefix, rt)
				if str(ans, "error") != "invalid_code" {
					t.Errorf("refresh after revoke: %v, want invalid_code", ans)
				}
				if h.srv.IsLive(rt) || h.srv.RefreshTokens(testClientID, "") != 0 {
					t.Errorf("revoked refresh token still live")
				}
				if c := h.srv.Counts(); c.Revocations != 1 {
					t.Errorf("Revocations = %d, want 1", c.Revocations)
				}
			})
		}
	}
}

func TestRevokeAccessToken(t *testing.T) {
	h := newHarness(t, Options{})
	rt, first := h.offlineTokens()
	second := str(h.refresh(portalPrefix, rt), "access_token")

	resp, _ := h.post(portalPrefix+"/token/revoke", url.Values{
		"token": {first}, "token_type": {"access_token"},
	}, false)

	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: HTTP %d, want 200", resp.StatusCode)
	}
	if h.apiStatus(first) != http.StatusUnauthorized {
		t.Errorf("revoked access token still works")
	}
	if h.apiStatus(second) != http.StatusOK || !h.srv.IsLive(rt) {
		t.Errorf("revoking one access token took others along")
	}
	if got := h.srv.LiveAccessTokens(rt); got != 1 {
		t.Errorf("LiveAccessTokens = %d, want 1", got)
	}
}

func TestRevokeRefused(t *testing.T) {
	type testCase struct {
		form func(h *harness, rt string) url.Values
		want string
	}
	tests := map[string]testCase{
		"unknown token": {
			form: func(*harness, string) url.Values {
				return url.Values{"token": {"1000.dead.beef"}}
			},
			want: `{"status":"failure","error":"invalid_token"}`,
		},
		"revoked twice": {
			form: func(h *harness, rt string) url.Values {
				h.post(portalPrefix+"/token/revoke",
					url.Values{"token": {rt}}, false)
				return url.Values{"token": {rt}}
			},
			want: `{"status":"failure","error":"invalid_token"}`,
		},
		"token type mismatch": {
			form: func(_ *harness, rt string) url.Values {
				return url.Values{
					"token": {rt}, "token_type": {"access_token"},
				}
			},
			want: `{"status":"failure","error":"invalid_token"}`,
		},
		"no token": {
			form: func(*harness, string) url.Values { return url.Values{} },
			want: `{"status":"failure","error":"invalid_request"}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			rt, _ := h.offlineTokens()

			resp, body := h.post(portalPrefix+"/token/revoke", tc.form(h, rt),
				false)

			if resp.StatusCode != http.StatusBadRequest ||
				body != tc.want+"\n" {
				t.Errorf("HTTP %d %q, want 400 %s", resp.StatusCode, body,
					tc.want)
			}
		})
	}
}
