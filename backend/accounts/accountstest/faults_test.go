package accountstest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	type testCase struct {
		faults Faults
		status int
		ctype  string // Content-Type prefix
		body   string // exact body, or a substring with contains
		// contains makes body a substring to find
		contains bool
	}
	tests := map[string]testCase{
		"bad gateway": {
			faults:   Faults{Status: http.StatusBadGateway},
			status:   http.StatusBadGateway,
			ctype:    "text/html",
			body:     "502 Bad Gateway",
			contains: true,
		},
		"unavailable": {
			faults:   Faults{Status: http.StatusServiceUnavailable},
			status:   http.StatusServiceUnavailable,
			ctype:    "text/html",
			body:     "503 Service Unavailable",
			contains: true,
		},
		"malformed": {
			faults: Faults{Malformed: true},
			status: http.StatusOK,
			ctype:  "application/json",
			body:   `{"access_token":"1000.8c2e4f0a`,
		},
		"html": {
			faults:   Faults{HTML: true},
			status:   http.StatusOK,
			ctype:    "text/html",
			body:     "<!DOCTYPE html>",
			contains: true,
		},
		"throttle": {
			faults: Faults{Throttle: true},
			status: http.StatusOK,
			ctype:  "application/json",
			body: `{"error":"Access Denied","error_description":"You have ` +
				`made too many requests continuously. Please try again ` +
				`after some time.","status":"failure"}` + "\n",
		},
		"localized throttle": {
			faults:   Faults{Throttle: true, Localized: true},
			status:   http.StatusOK,
			ctype:    "application/json",
			body:     `{"error":"拒绝访问","error_description":`,
			contains: true,
		},
		"status wins over throttle": {
			faults:   Faults{Status: http.StatusBadGateway, Throttle: true},
			status:   http.StatusBadGateway,
			ctype:    "text/html",
			body:     "502 Bad Gateway",
			contains: true,
		},
		"short latency": {
			faults: Faults{Latency: 20 * time.Millisecond},
			status: http.StatusOK,
			ctype:  "application/json",
			body:   `"access_token":"1000.`,
			// The request goes through after the delay.
			contains: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			code := h.code(portalPrefix, nil)
			h.srv.SetFaults(tc.faults)

			start := time.Now()
			resp, body := h.post(portalPrefix+"/token", url.Values{
				"grant_type":    {"authorization_code"},
				"code":          {code},
				"client_id":     {testClientID},
				"client_secret": {testSecret},
				"redirect_uri":  {testRedirect},
			}, false)

			if time.Since(start) < tc.faults.Latency {
				t.Errorf("answered before the latency of %s", tc.faults.Latency)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
			ct := resp.Header.Get("Content-Type")
			if !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tc.ctype)
			}
			if tc.contains && !strings.Contains(body, tc.body) ||
				!tc.contains && body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if tc.faults.Malformed && json.Valid([]byte(body)) {
				t.Errorf("malformed answer is valid JSON")
			}

			// A faulted request changed nothing: the code still works.
			h.srv.SetFaults(Faults{})
			if tc.faults.Latency == 0 {
				ans := h.exchange(portalPrefix, code)
				if str(ans, "access_token") == "" {
					t.Errorf("code after the fault: %v", ans)
				}
			}
			if got := h.srv.Counts().TokenRequests; got < 1 {
				t.Errorf("TokenRequests = %d", got)
			}
		})
	}
}

func TestFaultLocalizedEarnedThrottle(t *testing.T) {
	h := newHarness(t, Options{MintLimit: 1})
	rt, _ := h.offlineTokens()
	h.srv.SetFaults(Faults{Localized: true})

	h.refresh(portalPrefix, rt)
	ans := h.refresh(portalPrefix, rt)

	if str(ans, "error") != "拒绝访问" || str(ans, "status") != "failure" {
		t.Errorf("answer %v, want the localized throttle", ans)
	}
	if got := h.srv.Counts().Errors["拒绝访问"]; got != 1 {
		t.Errorf("Errors[拒绝访问] = %d, want 1", got)
	}
}

func TestFaultReset(t *testing.T) {
	for _, path := range []string{"/token", "/token/revoke"} {
		t.Run(path, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.srv.SetFaults(Faults{Reset: true})

			resp, err := h.http.PostForm(h.srv.URL+portalPrefix+path,
				url.Values{"token": {"1000.a.b"}})

			if err == nil {
				resp.Body.Close()
				t.Fatalf("HTTP %d, want the connection dropped",
					resp.StatusCode)
			}
		})
	}
}

func TestFaultLatencyTimeout(t *testing.T) {
	h := newHarness(t, Options{})
	h.srv.SetFaults(Faults{Latency: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(),
		100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		h.srv.URL+portalPrefix+"/token", nil)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = h.http.Do(req)

	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the client's deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("request took %s", d)
	}

	// The server gives up too: closing does not wait a minute.
	start = time.Now()
	h.srv.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %s", d)
	}
}

func TestFaultsOnRevoke(t *testing.T) {
	tests := map[string]struct {
		faults Faults
		status int
	}{
		"status applies":      {Faults{Status: 503}, http.StatusServiceUnavailable},
		"throttle does not":   {Faults{Throttle: true}, http.StatusOK},
		"malformed does not":  {Faults{Malformed: true}, http.StatusOK},
		"html does not":       {Faults{HTML: true}, http.StatusOK},
		"short latency delay": {Faults{Latency: time.Millisecond}, http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			rt, _ := h.offlineTokens()
			h.srv.SetFaults(tc.faults)

			resp, _ := h.post(portalPrefix+"/token/revoke",
				url.Values{"token": {rt}}, false)

			if resp.StatusCode != tc.status {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
			if live := h.srv.IsLive(rt); live != (tc.status != http.StatusOK) {
				t.Errorf("refresh token live = %v after HTTP %d", live,
					resp.StatusCode)
			}
		})
	}
}

func TestFaultsJSON(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    Faults
		wantErr string
	}{
		"latency": {
			in: `{"latency":"3s"}`, want: Faults{Latency: 3 * time.Second},
		},
		"everything": {
			in: `{"status":502,"malformed":true,"html":true,` +
				`"throttle":true,"localized":true,"reset":true}`,
			want: Faults{Status: 502, Malformed: true, HTML: true,
				Throttle: true, Localized: true, Reset: true},
		},
		"none": {in: `{}`},
		"bad latency": {
			in: `{"latency":"soon"}`, wantErr: "latency",
		},
		"bad status": {in: `{"status":42}`, wantErr: "status"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var f Faults
			err := json.Unmarshal([]byte(tc.in), &f)

			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || f != tc.want {
				t.Fatalf("got %+v, %v; want %+v", f, err, tc.want)
			}
			out, err := json.Marshal(f)
			if err != nil || string(out) != tc.in {
				t.Errorf("round trip %s, %v; want %s", out, err, tc.in)
			}
		})
	}
}
