package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// profiler takes CPU profiles of Vault and of the plugin (built from
// bench/cmd/unitycrm-bench-plugin, which serves pprof on pluginAddr) while
// one mix runs alone at conc.
type profiler struct {
	dir        string
	pluginAddr string
	seconds    int
	conc       int
	files      []string
}

const pprofEnv = "UNITYCRM_BENCH_PPROF"

// capture profiles each mix in turn and writes the profiles, and a top
// listing of each, to p.dir.
func (p *profiler) capture(ctx context.Context, c *api.Client, l *loader) error {
	for _, m := range []mix{mixCreds, mixSpread, mixKV} {
		say("profile: %s alone at concurrency %d for %ds", m, p.conc, p.seconds)
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		vaultOut := filepath.Join(p.dir, "vault-"+m.String()+".pprof")
		wg.Go(func() {
			errs[0] = p.fetch(ctx, c.Address()+"/v1/sys/pprof/profile", c.Token(), vaultOut)
		})
		pluginOut := filepath.Join(p.dir, "plugin-"+m.String()+".pprof")
		wg.Go(func() {
			errs[1] = p.fetch(ctx, "http://"+p.pluginAddr+"/debug/pprof/profile", "",
				pluginOut)
		})
		// The load outlasts the profiles a little on both ends.
		st := l.window(ctx, m, p.conc, time.Duration(p.seconds)*time.Second+time.Second)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		say("profile:   %s %.0f/s, %d errors", m, st.rate(), st.errs)
		p.files = append(p.files, vaultOut, pluginOut)
		for _, f := range []string{vaultOut, pluginOut} {
			if err := p.top(ctx, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetch downloads a CPU profile of p.seconds from url into out.
func (p *profiler) fetch(ctx context.Context, url, token, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		url+"?seconds="+strconv.Itoa(p.seconds), nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("profile %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// top writes `go tool pprof -top` of a profile beside it, by flat and by
// cumulative time.
func (p *profiler) top(ctx context.Context, profile string) error {
	for _, flag := range []string{"-top", "-top -cum"} {
		args := []string{"tool", "pprof", "-nodecount=60"}
		suffix := ".top.txt"
		if flag == "-top -cum" {
			args = append(args, "-top", "-cum")
			suffix = ".cum.txt"
		} else {
			args = append(args, "-top")
		}
		out, err := exec.CommandContext(ctx, "go", append(args, profile)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof %s: %w\n%s", profile, err, out)
		}
		name := profile[:len(profile)-len(".pprof")] + suffix
		if err := os.WriteFile(name, out, 0o644); err != nil {
			return err
		}
		p.files = append(p.files, name)
	}
	return nil
}
