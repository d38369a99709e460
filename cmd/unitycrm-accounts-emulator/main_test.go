package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the command itself when a test starts it as a subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("UNITYCRM_EMULATOR_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitReady polls for the ready file and returns the base URL in it.
func waitReady(t *testing.T, path string, failed <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return strings.TrimSpace(string(b))
		}
		select {
		case err := <-failed:
			t.Fatalf("the emulator stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("no ready file after 30s")
	return ""
}

// noRedirect is an HTTP client that shows redirects instead of following
// them.
var noRedirect = &http.Client{
	Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func TestRun(t *testing.T) {
	type testCase struct {
		args     []string
		prefix   string // path prefix of the endpoints
		redirect func(base string) string
		location string
		legacy   bool
	}
	tests := map[string]testCase{
		"defaults": {
			prefix:   "/clientoauth/v2/10023122998",
			redirect: func(base string) string { return base + "/callback" },
			location: "us",
		},
		"every flag": {
			args: []string{
				"-portal", "555",
				"-client-id", "1000.MINE",
				"-client-secret", "mine",
				"-redirect-uri", "https://a.example.org/cb",
				"-redirect-uri", "https://b.example.org/cb",
				"-location", "eu",
				"-legacy-expiry",
			},
			prefix:   "/clientoauth/v2/555",
			redirect: func(string) string { return "https://b.example.org/cb" },
			location: "eu",
			legacy:   true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr syncBuffer
			args := append([]string{"-listen", "127.0.0.1:0",
				"-ready-file", ready, "-auto-approve"}, tc.args...)
			done := make(chan error, 1)
			go func() { done <- run(ctx, args, &stdout, &stderr) }()

			base := waitReady(t, ready, done)

			first, _, _ := strings.Cut(stdout.String(), "\n")
			if first != "accounts emulator listening on "+base ||
				!strings.HasPrefix(base, "http://127.0.0.1:") ||
				strings.HasSuffix(base, ":0") {
				t.Errorf("first line %q, ready file %q", first, base)
			}
			clientID, secret := defaultClientID, defaultClientSecret
			if tc.legacy {
				clientID, secret = "1000.MINE", "mine"
			}
			code := authorize(t, base+tc.prefix, clientID,
				tc.redirect(base), tc.location)
			ans := exchange(t, base+tc.prefix, url.Values{
				"grant_type":    {"authorization_code"},
				"code":          {code},
				"client_id":     {clientID},
				"client_secret": {secret},
				"redirect_uri":  {tc.redirect(base)},
			})
			_, hasSec := ans["expires_in_sec"]
			if ans["access_token"] == nil || hasSec != tc.legacy {
				t.Errorf("token answer %v (legacy %v)", ans, tc.legacy)
			}
			if strings.Contains(stderr.String(), code) {
				t.Errorf("the log shows a grant code in clear")
			}
			if !strings.Contains(stderr.String(), "msg=\"token answer\"") {
				t.Errorf("no request log on stderr:\n%s", stderr.String())
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v, want nil after the context ends", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return after the context ended")
			}
		})
	}
}

// authorize gets a grant code from the auto-approving emulator.
func authorize(t *testing.T, prefix, clientID, redirect,
	location string) string {
	t.Helper()
	resp, err := noRedirect.Get(prefix + "/auth?" + url.Values{
		"client_id":     {clientID},
		"response_type": {"code"},
		"redirect_uri":  {redirect},
		"scope":         {"ZohoCRM.org.ALL"},
		"access_type":   {"offline"},
	}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("auth: HTTP %d Location %q", resp.StatusCode,
			resp.Header.Get("Location"))
	}
	if !strings.HasPrefix(loc.String(), redirect+"?code=") ||
		loc.Query().Get("location") != location {
		t.Errorf("redirect %s, want %s?code=...&location=%s", loc, redirect,
			location)
	}
	return loc.Query().Get("code")
}

// exchange posts form to the token endpoint and decodes the answer.
func exchange(t *testing.T, prefix string, form url.Values) map[string]any {
	t.Helper()
	resp, err := http.PostForm(prefix+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatal(err)
	}
	return ans
}

func TestRunRefused(t *testing.T) {
	tests := map[string]struct {
		args []string
		want error  // matched with errors.Is, or
		msg  string // found in the error
	}{
		"every interface": {
			args: []string{"-listen", "0.0.0.0:0"}, msg: "loopback",
		},
		"public address": {
			args: []string{"-listen", "203.0.113.7:8085"}, msg: "loopback",
		},
		"no host": {args: []string{"-listen", ":8085"}, msg: "loopback"},
		"unknown flag": {
			args: []string{"-bogus"}, want: errUsage,
		},
		"stray argument": {args: []string{"serve"}, want: errUsage},
		"help":           {args: []string{"-h"}, want: flag.ErrHelp},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout bytes.Buffer

			err := run(context.Background(), tc.args, &stdout, io.Discard)

			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if tc.msg != "" && (err == nil ||
				!strings.Contains(err.Error(), tc.msg)) {
				t.Errorf("error %v, want one saying %s", err, tc.msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q before refusing", stdout.String())
			}
		})
	}
}

// TestSignal runs the command as a process and stops it with SIGTERM.
func TestSignal(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(os.Args[0], "-listen", "127.0.0.1:0",
		"-ready-file", ready, "-quiet")
	cmd.Env = append(os.Environ(), "UNITYCRM_EMULATOR_MAIN=1")
	var stdout syncBuffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	base := waitReady(t, ready, exited)
	resp, err := http.Get(base + "/_emulator/counts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v, want status 0\n%s", err, stdout.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 10s after SIGTERM")
	}
	if !strings.HasPrefix(stdout.String(),
		"accounts emulator listening on "+base+"\n") {
		t.Errorf("output %q", stdout.String())
	}
}
