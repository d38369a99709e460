package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

// loadResult is the throughput comparison through a real Vault, and the
// upstream economy of the same run.
type loadResult struct {
	levels []*levelResult

	credsBytes, kvBytes int // answer sizes of one read of each

	// creds reads served (each one a lease) and leases Vault listed after.
	reads, leasesListed int
	leaseTTL            time.Duration
	credentials         int

	// Token requests the emulator saw from the first credential's code
	// exchange to the last read, over runLength, and the fewest that
	// length allows for the credentials read.
	tokenRequests int
	runLength     time.Duration
	minRequests   int
	reuseSpan     time.Duration // a token's life less min_token_ttl
}

// credName is the credential the throughput comparison reads; the spread
// mix reads spreadCreds others.
const (
	credName    = "bench"
	spreadCreds = 16
)

func spreadName(i int) string { return fmt.Sprintf("bench-%02d", i+1) }

// runLoad starts a dev Vault with the engine and a KV v1 mount and
// compares reads of both at each concurrency level.
func runLoad(ctx context.Context, o *options, p *vaulttest.Plugin, prof *profiler,
) (*loadResult, error) {
	emu := newEmulator()
	defer emu.Close()

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	v, err := vaulttest.Start(o.vaultBin, "http://"+addr, filepath.Join(o.tmp, "vault-dev.log"),
		"server", "-dev",
		"-dev-root-token-id="+devRootToken,
		"-dev-listen-address="+addr,
		"-dev-plugin-dir="+p.Dir,
		"-dev-plugin-init=false",
		"-dev-no-store-token",
		"-log-level="+o.logLevel,
	)
	if err != nil {
		return nil, err
	}
	defer v.Stop()
	say("load: dev Vault pid %d at %s, log %s", v.PID(), v.Addr, v.LogPath)

	c, err := startedClient(ctx, v, devRootToken)
	if err != nil {
		return nil, err
	}
	res := &loadResult{leaseTTL: 30 * time.Minute}
	if err := enableEngine(ctx, c, p, emu, res.leaseTTL); err != nil {
		return nil, err
	}
	err = c.Sys().MountWithContext(ctx, kvPath, &api.MountInput{
		Type:    "kv",
		Options: map[string]string{"version": "1"},
	})
	if err != nil {
		return nil, fmt.Errorf("enable kv version 1: %w", err)
	}

	// One credential authorized as an operator would, the others imported
	// by refresh token.
	before := emu.Counts()
	exchangedAt := time.Now()
	if err := authorize(ctx, c, emu, credName); err != nil {
		return nil, err
	}
	for i := range spreadCreds {
		rt := emu.IssueRefreshToken(clientID, "", []string{"ZohoCRM.modules.ALL"})
		_, err := c.Logical().WriteWithContext(ctx, mountPath+"/creds/"+spreadName(i),
			map[string]any{"refresh_token": rt})
		if err != nil {
			return nil, fmt.Errorf("import creds/%s: %w", spreadName(i), err)
		}
	}
	res.credentials = 1 + spreadCreds

	l := &loader{
		hc:       c.CloneConfig().HttpClient,
		token:    c.Token(),
		vaultPid: v.PID(),
	}
	l.urls[mixCreds] = []string{v.Addr + "/v1/" + mountPath + "/creds/" + credName}
	for i := range spreadCreds {
		l.urls[mixSpread] = append(l.urls[mixSpread],
			v.Addr+"/v1/"+mountPath+"/creds/"+spreadName(i))
	}
	l.urls[mixKV] = []string{v.Addr + "/v1/" + kvPath + "/" + credName}
	l.snapshot = func() (promSnapshot, error) { return scrape(ctx, c) }
	l.pluginPid, err = waitChild(ctx, v.PID(), p.Path)
	if err != nil {
		return nil, err
	}

	// The KV secret answers as many bytes as a creds read.
	credsBody, err := l.get(ctx, l.urls[mixCreds][0])
	if err != nil {
		return nil, fmt.Errorf("read creds/%s: %w", credName, err)
	}
	l.served[mixCreds].Add(1)
	res.credsBytes = len(credsBody)
	res.kvBytes, err = l.matchKVSize(ctx, func(data map[string]any) error {
		_, err := c.Logical().WriteWithContext(ctx, kvPath+"/"+credName, data)
		return err
	}, credsBody)
	if err != nil {
		return nil, err
	}

	for _, conc := range o.levels {
		say("load: concurrency %d, %v of each mix in %v windows", conc, o.duration, o.window)
		lr := l.runLevel(ctx, conc, o.duration, o.window, o.warm)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.levels = append(res.levels, lr)
		for m := range numMixes {
			st := lr.mixes[m]
			say("load:   %-6s %6.0f/s p50 %8v p99 %8v, %d errors", m, st.rate(),
				st.percentile(0.5).Round(time.Microsecond),
				st.percentile(0.99).Round(time.Microsecond), st.errs)
		}
	}
	if prof != nil {
		if err := prof.capture(ctx, c, l); err != nil {
			return nil, err
		}
	}
	res.runLength = time.Since(exchangedAt)
	res.reads = int(l.served[mixCreds].Load() + l.served[mixSpread].Load())
	res.tokenRequests = emu.Counts().TokenRequests - before.TokenRequests

	// Each read made a lease; none was revoked.
	names := []string{credName}
	for i := range spreadCreds {
		names = append(names, spreadName(i))
	}
	for _, name := range names {
		n, err := leasesUnder(ctx, c, mountPath+"/creds/"+name+"/")
		if err != nil {
			return nil, fmt.Errorf("list leases: %w", err)
		}
		res.leasesListed += n
	}

	// A token is reused until min_token_ttl before it expires; the code
	// exchange brings the first one.
	minTTL, err := configSeconds(ctx, c, "min_token_ttl")
	if err != nil {
		return nil, err
	}
	res.reuseSpan = accountstest.DefaultAccessTokenTTL - minTTL
	res.minRequests = res.credentials *
		int(math.Ceil(float64(res.runLength)/float64(res.reuseSpan)))
	return res, nil
}

// startedClient waits for the server v to answer and be active, and
// returns a client using token.
func startedClient(ctx context.Context, v *vaulttest.Process, token string) (*api.Client, error) {
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := v.WaitResponding(wctx); err != nil {
		if v.Exited() {
			err = fmt.Errorf("%w\n%s", err, logTail(v, 30))
		}
		return nil, err
	}
	c, err := newAPIClient(v.Addr, token)
	if err != nil {
		return nil, err
	}
	if token != "" {
		if err := vaulttest.WaitActive(wctx, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// waitChild waits for Vault (parent) to run the plugin binary exe.
func waitChild(ctx context.Context, parent int, exe string) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pid := vaulttest.ChildWithExe(parent, exe); pid > 0 {
			return pid, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no plugin process %s under vault pid %d", exe, parent)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
