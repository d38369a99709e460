package accountstest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentRefreshes(t *testing.T) {
	const n = 1000
	tests := map[string]struct {
		opts      Options
		wantMints int
		wantLive  int
	}{
		"default limits": {
			wantMints: 10, wantLive: 11, // the exchange's token and ten
		},
		"raised mint limit": {
			opts: Options{MintLimit: n}, wantMints: n, wantLive: 15,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			rt, _ := h.offlineTokens()
			client := &http.Client{
				Timeout:   time.Minute,
				Transport: &http.Transport{MaxConnsPerHost: 32},
			}
			defer client.CloseIdleConnections()
			body := url.Values{
				"grant_type":    {"refresh_token"},
				"refresh_token": {rt},
				"client_id":     {testClientID},
				"client_secret": {testSecret},
			}.Encode()

			var mu sync.Mutex
			seen := map[string]bool{}
			answers := map[string]int{}
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					resp, err := client.Post(h.srv.URL+portalPrefix+"/token",
						"application/x-www-form-urlencoded",
						strings.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					raw, _ := io.ReadAll(resp.Body)
					var ans map[string]any
					if err := json.Unmarshal(raw, &ans); err != nil {
						t.Errorf("answer %q: %v", raw, err)
						return
					}

					mu.Lock()
					defer mu.Unlock()
					if at := str(ans, "access_token"); at != "" {
						if seen[at] {
							t.Errorf("access token handed out twice")
						}
						seen[at] = true
						answers["ok"]++
						return
					}
					answers[str(ans, "error")]++
				})
			}
			wg.Wait()

			if answers["ok"] != tc.wantMints ||
				answers["Access Denied"] != n-tc.wantMints {
				t.Errorf("answers %v, want %d tokens and the rest throttled",
					answers, tc.wantMints)
			}
			c := h.srv.Counts()
			if c.TokenRequests != n+1 || c.Refreshes != tc.wantMints ||
				c.Errors["Access Denied"] != n-tc.wantMints {
				t.Errorf("counts %+v inconsistent with %v", c, answers)
			}
			if got := h.srv.LiveAccessTokens(rt); got != tc.wantLive {
				t.Errorf("LiveAccessTokens = %d, want %d", got, tc.wantLive)
			}
		})
	}
}
