package accounts

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bodyTransport answers every request with one canned answer, without a
// network, so the fuzzer runs the real parsing path at full speed.
type bodyTransport struct {
	status int
	ctype  string
	body   string
}

func (b bodyTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: b.status,
		Header:     http.Header{"Content-Type": {b.ctype}},
		Body:       io.NopCloser(strings.NewReader(b.body)),
	}, nil
}

// FuzzTokenAnswer feeds arbitrary token answers through the client. Whatever
// comes back must be a token with a sane life, or an *Error whose message
// shows nothing of the answer.
func FuzzTokenAnswer(f *testing.F) {
	seeds := []string{
		`{"access_token":"1000.a","refresh_token":"1000.r","api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600}`,
		`{"access_token":"1000.a","api_domain":"https://api.zoho.eu","expires_in":3600000,"expires_in_sec":3600}`,
		`{"access_token":"1000.a","expires_in":"3600"}`,
		`{"access_token":"1000.a","expires_in_sec":"abc"}`,
		`{"error":"invalid_code"}`,
		`{"error":"Access Denied","error_description":"You have made too many requests continuously.","status":"failure"}`,
		`{"error":"拒绝访问"}`,
		`{"error":"invalid_client_secret"}`,
		`{"status":"success"}`,
		`<html><body>error</body></html>`,
		`access_token=1000.a&expires_in=3600`,
		`{"access_token":"1000.a","exp`,
		``,
	}
	for _, s := range seeds {
		for _, status := range []int{200, 400, 502} {
			f.Add(status, "application/json;charset=UTF-8", s)
		}
	}
	f.Add(200, "text/plain", "access_token=1000.a&expires_in=99999999999")
	f.Add(200, "application/x-www-form-urlencoded", "error=invalid_code")

	f.Fuzz(func(t *testing.T, status int, ctype, body string) {
		if status < 100 || status > 599 {
			return
		}
		c := NewClient(Config{
			ClientID: "1000.C", ClientSecret: "fuzz-secret",
			Endpoints:  DefaultEndpoints("https://accounts.example", ""),
			HTTPClient: &http.Client{Transport: bodyTransport{status, ctype, body}},
			Timeout:    time.Second,
		})
		tok, err := c.Refresh(context.Background(), "1000.fuzz-refresh", "")
		if err != nil {
			ae, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T is not an *Error", err)
			}
			msg := ae.Error()
			if strings.Contains(msg, "fuzz-secret") || strings.Contains(msg, "1000.fuzz-refresh") {
				t.Fatalf("error shows a secret: %q", msg)
			}
			if len(body) > 8 && strings.Contains(msg, body) {
				t.Fatalf("error shows the answer body: %q", msg)
			}
			return
		}
		if tok.AccessToken == "" {
			t.Fatal("success without an access token")
		}
		if tok.ExpiresIn <= 0 || tok.ExpiresIn > 24*time.Hour {
			t.Fatalf("token life %v out of range", tok.ExpiresIn)
		}
	})
}

// FuzzRevokeAnswer checks that only an explicit success is success.
func FuzzRevokeAnswer(f *testing.F) {
	f.Add(200, `{"status":"success"}`)
	f.Add(400, `{"status":"failure","error":"invalid_token"}`)
	f.Add(200, `{"error":"Access Denied"}`)
	f.Add(503, `<html></html>`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		err := revokeAnswer(status, []byte(body))
		if err == nil && (status != 200 || !strings.Contains(strings.ToLower(body), "success")) {
			t.Fatalf("HTTP %d %q taken for success", status, body)
		}
	})
}
