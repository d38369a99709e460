package accountstest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestControlCounts(t *testing.T) {
	h := newHarness(t, Options{})
	h.offlineTokens()
	h.refresh(portalPrefix, "1000.no.such")

	resp, body := h.get("/_emulator/counts")

	want := `{"auth_requests":1,"approvals":1,"denials":0,"codes_issued":1,` +
		`"token_requests":2,"code_exchanges":1,"refreshes":0,` +
		`"client_credentials":0,"revocations":0,"api_calls":0,` +
		`"api_rejected":0,"errors":{"invalid_code":1}}` + "\n"
	if resp.StatusCode != http.StatusOK || body != want {
		t.Errorf("HTTP %d %s\nwant %s", resp.StatusCode, body, want)
	}
}

func TestControlFaults(t *testing.T) {
	h := newHarness(t, Options{})
	put := func(body string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodPut,
			h.srv.URL+"/_emulator/faults", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return h.do(req)
	}

	resp, body := put(`{"latency":"3s","status":502}`)
	if resp.StatusCode != http.StatusOK ||
		body != `{"latency":"3s","status":502}`+"\n" {
		t.Errorf("PUT: HTTP %d %s", resp.StatusCode, body)
	}
	want := Faults{Latency: 3 * time.Second, Status: 502}
	if got := h.srv.currentFaults(); got != want {
		t.Errorf("faults %+v, want %+v", got, want)
	}
	if _, body := h.get("/_emulator/faults"); body !=
		`{"latency":"3s","status":502}`+"\n" {
		t.Errorf("GET: %s", body)
	}

	resp, body = put(`{"latency":"later"}`)
	if resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, "latency") {
		t.Errorf("bad PUT: HTTP %d %s, want 400 naming latency",
			resp.StatusCode, body)
	}
	if got := h.srv.currentFaults(); got != want {
		t.Errorf("a refused PUT changed the faults to %+v", got)
	}

	put(`{}`)
	if got := h.srv.currentFaults(); got != (Faults{}) {
		t.Errorf("{} left faults %+v", got)
	}
}

func TestControlToken(t *testing.T) {
	h := newHarness(t, Options{})
	rt, at := h.offlineTokens()
	h.post(portalPrefix+"/token/revoke", url.Values{"token": {rt}}, false)
	for token, want := range map[string]string{
		rt: `{"live":false}`, at: `{"live":false}`, "": `{"live":false}`,
	} {
		if _, body := h.get("/_emulator/token?token=" +
			url.QueryEscape(token)); body != want+"\n" {
			t.Errorf("token: %s, want %s", body, want)
		}
	}

	_, at = h.offlineTokens()
	if _, body := h.get("/_emulator/token?token=" + at); body !=
		`{"live":true}`+"\n" {
		t.Errorf("live token: %s", body)
	}
}

func TestControlApprove(t *testing.T) {
	tests := map[string]struct {
		form   url.Values
		status int
		want   string // prefix of the body
	}{
		"approve": {
			form:   url.Values{"user": {"gabbai@example.org"}},
			status: http.StatusOK,
			want:   `{"callback_url":"` + testRedirect + `?code=1000.`,
		},
		"unknown client": {
			form: url.Values{"url": {"/oauth/v2/auth?client_id=1000.X&" +
				"redirect_uri=x"}},
			status: http.StatusBadRequest,
			want:   `{"error":"invalid_client"}`,
		},
		"no url": {
			form:   url.Values{"url": {""}},
			status: http.StatusBadRequest,
			want:   `{"error":"url: missing"}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			if _, ok := tc.form["url"]; !ok {
				tc.form.Set("url", h.authURL(portalPrefix, nil))
			}

			resp, body := h.post("/_emulator/approve", tc.form, false)

			if resp.StatusCode != tc.status || !strings.HasPrefix(body, tc.want) {
				t.Errorf("HTTP %d %s, want %d %s...", resp.StatusCode, body,
					tc.status, tc.want)
			}
		})
	}
}

func TestControlSelfClientCode(t *testing.T) {
	h := newHarness(t, Options{})

	_, body := h.post("/_emulator/self-client-code", url.Values{
		"client_id": {testClientID}, "scope": {"ZohoCRM.org.ALL"},
	}, false)

	ans := h.token(portalPrefix, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {str(decode(t, body), "code")},
		"client_id":     {testClientID},
		"client_secret": {testSecret},
	})
	if str(ans, "refresh_token") == "" || str(ans, "scope") != "ZohoCRM.org.ALL" {
		t.Errorf("exchange of the console's code: %v", ans)
	}
}

func TestCallbackPage(t *testing.T) {
	h := newHarness(t, Options{})
	path := "/callback?code=1000.abc.def&state=a%26b&location=us"

	resp, page := h.get(path)

	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	for _, want := range []string{
		`<textarea readonly rows="4" cols="100">` + h.srv.URL +
			`/callback?code=1000.abc.def&amp;state=a%26b&amp;location=us` +
			`</textarea>`,
		`<tr><th>state</th><td><code>a&amp;b</code></td></tr>`,
		`<tr><th>code</th><td><code>1000.abc.def</code></td></tr>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("callback page lacks %s:\n%s", want, page)
		}
	}
}

func TestIndexPage(t *testing.T) {
	h := newHarness(t, Options{})

	_, body := h.get("/")

	want := "token      " + h.srv.URL + "/clientoauth/v2/10023122998/token\n"
	if !strings.Contains(body, want) {
		t.Errorf("index lacks %q:\n%s", want, body)
	}
}
