package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mix is one kind of request the load generator sends.
type mix int

const (
	// mixCreds: GET unitycrm/creds/<name> of one credential, a leased
	// access token.
	mixCreds mix = iota
	// mixSpread: the same, each worker reading one of spreadCreds
	// credentials.
	mixSpread
	// mixKV: GET kv/<name>, a KV version 1 secret.
	mixKV
	numMixes
)

func (m mix) String() string {
	return [...]string{"creds", "spread", "kv"}[m]
}

// loader sends GET requests to Vault over keep-alive connections, the way
// an application (or Vault Agent) reads secrets.
type loader struct {
	hc    *http.Client
	token string
	// urls of each mix; worker w of a window uses urls[m][w % len].
	urls [numMixes][]string

	// Processes whose CPU time is charged to each window.
	vaultPid, pluginPid int

	// snapshot, when set, reads Vault's telemetry between windows,
	// outside their timing; last is the latest reading.
	snapshot func() (promSnapshot, error)
	last     promSnapshot

	// served counts the successful answers of each mix, warm-ups too.
	served [numMixes]atomic.Int64
}

// stats is what a run of one mix measured.
type stats struct {
	n       int
	errs    int
	elapsed time.Duration
	lat     []time.Duration
	// CPU time each process used while this mix ran.
	vaultCPU, pluginCPU, benchCPU time.Duration
	firstErr                      string
	// What Vault's telemetry grew by while this mix ran.
	vault promDelta
}

func (s *stats) add(o *stats) {
	s.n += o.n
	s.errs += o.errs
	s.elapsed += o.elapsed
	s.lat = append(s.lat, o.lat...)
	s.vaultCPU += o.vaultCPU
	s.pluginCPU += o.pluginCPU
	s.benchCPU += o.benchCPU
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
	if o.vault != nil && s.vault == nil {
		s.vault = promDelta{}
	}
	for k, v := range o.vault {
		s.vault[k] += v
	}
}

// mean is the average latency.
func (s *stats) mean() time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.lat {
		sum += d
	}
	return sum / time.Duration(len(s.lat))
}

func (s *stats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n) / s.elapsed.Seconds()
}

// percentile is the nearest-rank percentile p (0 < p <= 1) of the sorted
// latencies.
func (s *stats) percentile(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(s.lat)))) - 1
	return s.lat[max(i, 0)]
}

// perRequest is a CPU time per completed request.
func (s *stats) perRequest(d time.Duration) time.Duration {
	if s.n == 0 {
		return 0
	}
	return d / time.Duration(s.n)
}

// get sends one GET and reads the whole answer. It returns the body, or an
// error for anything but HTTP 200.
func (l *loader) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", l.token)
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
	}
	return body, nil
}

// window runs conc workers that each send requests of mix m back to back
// until d has passed, and measures them. Requests in flight at the end are
// waited for and counted; elapsed runs until the last one is done.
func (l *loader) window(ctx context.Context, m mix, conc int, d time.Duration) *stats {
	var (
		mu  sync.Mutex
		out = &stats{lat: make([]time.Duration, 0, 4096)}
		wg  sync.WaitGroup
	)
	before := l.last
	if l.snapshot != nil && before == nil {
		before, _ = l.snapshot()
	}
	cpu0 := l.cpu()
	start := time.Now()
	end := start.Add(d)
	for w := range conc {
		url := l.urls[m][w%len(l.urls[m])]
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			errs, firstErr := 0, ""
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				_, err := l.get(ctx, url)
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			l.served[m].Add(int64(len(lat)))
			mu.Lock()
			out.n += len(lat)
			out.lat = append(out.lat, lat...)
			out.errs += errs
			if out.firstErr == "" {
				out.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	cpu1 := l.cpu()
	out.vaultCPU = cpu1[0] - cpu0[0]
	out.pluginCPU = cpu1[1] - cpu0[1]
	out.benchCPU = cpu1[2] - cpu0[2]
	l.last = nil
	if l.snapshot != nil {
		if after, err := l.snapshot(); err == nil && before != nil {
			out.vault = after.since(before)
			l.last = after
		}
	}
	return out
}

// cpu samples the CPU time of Vault, the plugin and this process.
func (l *loader) cpu() [3]time.Duration {
	var out [3]time.Duration
	for i, pid := range []int{l.vaultPid, l.pluginPid, os.Getpid()} {
		if pid > 0 {
			out[i], _ = cpuTime(pid)
		}
	}
	return out
}

// levelResult is one concurrency level: every mix, interleaved.
type levelResult struct {
	conc  int
	mixes [numMixes]*stats
}

// runLevel measures every mix at one concurrency. After a short warm-up
// of each, it runs windows of each mix in turn, the order reversed every
// other round (creds, spread, kv, kv, spread, creds, ...), until each has
// run for total, so drift and noise on the machine land on all alike.
func (l *loader) runLevel(ctx context.Context, conc int, total, window, warm time.Duration,
) *levelResult {
	for m := range numMixes {
		l.window(ctx, m, conc, warm)
	}

	res := &levelResult{conc: conc}
	for m := range numMixes {
		res.mixes[m] = &stats{}
	}
	rounds := max(int(total/window), 1)
	for i := range rounds {
		order := []mix{mixCreds, mixSpread, mixKV}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, m := range order {
			res.mixes[m].add(l.window(ctx, m, conc, window))
		}
	}
	for m := range numMixes {
		slices.Sort(res.mixes[m].lat)
	}
	return res
}

// matchKVSize writes kv/<name> so that reading it answers as many bytes as
// reading creds/<name> did (credsBody): the same data fields, plus a pad
// field sized to the difference. It returns the KV answer's size.
func (l *loader) matchKVSize(ctx context.Context, write func(map[string]any) error,
	credsBody []byte,
) (int, error) {
	var creds struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(credsBody, &creds); err != nil {
		return 0, fmt.Errorf("decode creds answer: %w", err)
	}
	data := creds.Data
	pad := 0
	for range 6 {
		data["pad"] = strings.Repeat("x", pad)
		if err := write(data); err != nil {
			return 0, err
		}
		body, err := l.get(ctx, l.urls[mixKV][0])
		if err != nil {
			return 0, fmt.Errorf("read kv: %w", err)
		}
		diff := len(credsBody) - len(body)
		if diff == 0 || pad+diff < 0 {
			return len(body), nil
		}
		pad += diff
	}
	return 0, fmt.Errorf("could not match the KV answer to %d bytes", len(credsBody))
}
