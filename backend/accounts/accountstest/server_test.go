package accountstest

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{
		"0.0.0.0:0",
		":0",
		"[::]:0",
		"8.8.8.8:8085",
		"192.168.1.10:0",
		"example.org:8085",
		"no-port",
	} {
		t.Run(addr, func(t *testing.T) {
			s, err := Listen(addr, Options{})

			if err == nil {
				s.Close()
				t.Fatalf("Listen(%q) succeeded, want a refusal", addr)
			}
			if addr != "no-port" && !errors.Is(err, ErrNotLoopback) {
				t.Errorf("error %v, want ErrNotLoopback", err)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name the address", err)
			}
		})
	}
}

func TestListenLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			if addr == "[::1]:0" {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				l.Close()
			}

			s, err := Listen(addr, Options{})
			if err != nil {
				t.Fatalf("Listen(%q): %v", addr, err)
			}
			defer s.Close()

			resp, err := http.Get(s.URL + "/_emulator/counts")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("HTTP %d from %s", resp.StatusCode, s.URL)
			}
			s.Close() // twice is fine
		})
	}
}

func TestEmulatorWithoutServer(t *testing.T) {
	e := New(Options{})
	e.AddClient(Client{ID: testClientID, Secret: testSecret})
	code := e.SelfClientCode(testClientID, []string{"ZohoCRM.org.ALL"})
	post := func() map[string]any {
		req := httptest.NewRequest(http.MethodPost,
			"http://emulator.test"+plainPrefix+"/token?"+url.Values{
				"grant_type":    {"authorization_code"},
				"code":          {code},
				"client_id":     {testClientID},
				"client_secret": {testSecret},
			}.Encode(), nil)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return decode(t, rec.Body.String())
	}

	ans := post()
	if got := str(ans, "api_domain"); got != "http://emulator.test" {
		t.Errorf("api_domain %q, want the request's origin", got)
	}

	e.SetBaseURL("https://accounts.example.org/")
	code = e.SelfClientCode(testClientID, []string{"ZohoCRM.org.ALL"})
	ans = post()
	if got := str(ans, "api_domain"); got != "https://accounts.example.org" {
		t.Errorf("api_domain %q, want the base URL", got)
	}
}
