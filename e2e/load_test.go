//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

// TestLoad has 64 clients, each with its own connection, read one
// credential through the real Vault as fast as they can for 5 seconds (60
// in the full form): no read fails, the accounts server sees no more token
// requests than the quota allows, and the plugin's memory stays flat.
// Leases last 20 seconds. The quick form revokes them by prefix at the end;
// in the full form Vault expires and revokes them while the reads go on,
// and the rest after. Either way the last lease on the shared token
// revokes it upstream.
func TestLoad(t *testing.T) {
	showLogOnFailure(t, env.vault)
	const (
		clients  = 64
		leaseTTL = 20 * time.Second
	)
	duration := pick(5*time.Second, 60*time.Second)
	maxReads := pick(100_000, 1_000_000) // a bound, far above what 2 cores do
	c := env.client
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()

	const mount, name = mountPath + "-load", "busy"
	emu := loadMount(ctx, t, mount, leaseTTL)
	authorize(t, c, mount, emu, name)

	// One warm-up read starts nothing new: the multiplexed plugin process
	// already serves the other mounts.
	warm := readCreds(t, c, mount, name)
	pid := pluginPID(env.vault)
	if pid == 0 {
		t.Fatalf("found no %s process under vault (pid %d)", pluginName,
			env.vault.PID())
	}
	vaultPID := env.vault.PID()
	rssBefore, vaultBefore := rssMiB(pid), rssMiB(vaultPID)
	countsBefore := emu.Counts()

	res := runLoad(ctx, c.Token(), env.vault.Addr, mount+"/creds/"+name, clients,
		duration, maxReads)
	rssAfter, vaultAfter := rssMiB(pid), rssMiB(vaultPID)
	countsAfter := emu.Counts()

	if len(res.errs) > 0 {
		t.Errorf("%d of %d reads failed; the first: %v", len(res.errs),
			res.reads+len(res.errs), res.errs[0])
	}
	if res.reads == 0 {
		t.Fatal("no read succeeded")
	}
	if pluginPID(env.vault) != pid {
		t.Errorf("the plugin process changed during the load (%d, now %d)", pid,
			pluginPID(env.vault))
	}
	tokenRequests := countsAfter.TokenRequests - countsBefore.TokenRequests
	if tokenRequests > 10 {
		t.Errorf("the load sent %d token requests upstream; the quota is 10 per 10 "+
			"minutes", tokenRequests)
	}
	if n := countsAfter.Errors["Access Denied"] - countsBefore.Errors["Access Denied"]; n > 0 {
		t.Errorf("the accounts server throttled the engine %d times", n)
	}
	// Memory: an engine that kept something per read would grow with the
	// tens of thousands of reads; allow the runtime its heap growth.
	if rssAfter > rssBefore+64 {
		t.Errorf("plugin VmRSS grew from %.1f MiB to %.1f MiB over %d reads", rssBefore,
			rssAfter, res.reads)
	}

	// The quick form ends the leases by prefix, the full form by their
	// expiry; either way the last lease on the token revokes it upstream.
	prefix := mount + "/creds/" + name
	var counted, held int
	ending := time.Now()
	if fullForm() {
		if err := waitNoLeases(ctx, c, prefix+"/", leaseTTL+2*time.Minute); err != nil {
			t.Fatal(err)
		}
	} else {
		// Nothing expired yet: every lease a client got is counted once by
		// the engine and held once by Vault.
		counted = credStatus(ctx, t, c, mount, name).leases
		held = len(listLeases(ctx, t, c, prefix+"/"))
		if counted != held || held != res.reads+1 {
			t.Errorf("after the load the engine counts %d leases, Vault holds %d, clients "+
				"got %d", counted, held, res.reads+1)
		}
		if err := c.Sys().RevokePrefixWithContext(ctx, prefix); err != nil {
			t.Fatalf("revoke-prefix: %v", err)
		}
	}
	endTook := time.Since(ending)
	st := credStatus(ctx, t, c, mount, name)
	if st.leases != 0 {
		t.Errorf("the engine counts %d leases after revoke-prefix", st.leases)
	}
	live := 0
	for tok := range res.tokens {
		if emu.IsLive(tok) {
			live++
		}
	}
	if emu.IsLive(warm.AccessToken) {
		live++
	}
	if live > 0 {
		t.Errorf("%d access tokens are live upstream after every lease was revoked", live)
	}
	final := emu.Counts()

	ended := fmt.Sprintf("leases counted by the engine %d = held by Vault %d = "+
		"answers; revoke-prefix took %v", counted, held, endTook.Round(time.Millisecond))
	how := "then revoke-prefix"
	if fullForm() {
		ended = fmt.Sprintf("Vault expired and revoked every lease, the last %v "+
			"after the load", endTook.Round(time.Second))
		how = "leases expiring and revoked by Vault during the run, the rest after it"
	}
	report(t, "load",
		fmt.Sprintf("%d clients, each its own connection, reading creds/%s through the "+
			"dev Vault for %v (lease TTL %v); %s", clients, name, duration, leaseTTL, how),
		fmt.Sprintf("%d reads (%.0f/s), %d errors; latency p50 %v, p99 %v, max %v; "+
			"%d distinct tokens; upstream token requests during the load %d (quota "+
			"10), throttled 0; plugin pid %d VmRSS %.1f → %.1f MiB (Vault %.0f → "+
			"%.0f MiB); %s; then 0 leases counted, %d tokens live, upstream "+
			"revocations %d",
			res.reads, float64(res.reads)/res.elapsed.Seconds(), len(res.errs),
			res.quantile(0.50), res.quantile(0.99), res.quantile(1), len(res.tokens),
			tokenRequests, pid, rssBefore, rssAfter, vaultBefore, vaultAfter, ended, live,
			final.Revocations-countsBefore.Revocations))
}

// waitNoLeases polls until Vault holds no lease under prefix (which ends
// in a slash), for at most d.
func waitNoLeases(ctx context.Context, c *api.Client, prefix string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		s, err := c.Logical().ListWithContext(ctx, "sys/leases/lookup/"+prefix)
		n := 0
		if s != nil {
			keys, _ := s.Data["keys"].([]any)
			n = len(keys)
		}
		if err == nil && n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Vault still holds %d leases under %s after %v (%v)",
				n, prefix, d, err)
		}
		time.Sleep(time.Second)
	}
}

// loadResult is what runLoad's clients saw.
type loadResult struct {
	reads     int
	errs      []error
	latencies []time.Duration
	tokens    map[string]bool
	elapsed   time.Duration
}

// quantile returns the q-quantile of the read latencies (1 is the maximum).
func (r *loadResult) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := min(len(r.latencies)-1, int(q*float64(len(r.latencies))))
	return r.latencies[i].Round(100 * time.Microsecond)
}

// runLoad has n clients read path at addr until d passes or maxReads
// reads were made in all. Each client has its own connection. A read in
// flight when d passes is waited for, not cancelled: a client that gives up
// on a read is another test (see the report on cancelled reads).
func runLoad(ctx context.Context, token, addr, path string, n int, d time.Duration,
	maxReads int,
) *loadResult {
	deadline := time.Now().Add(d)

	var (
		mu    sync.Mutex
		res   = &loadResult{tokens: map[string]bool{}}
		wg    sync.WaitGroup
		left  = maxReads
		start = time.Now()
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	}
	for range n {
		c, err := newClient(addr, token)
		if err != nil {
			panic(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var errs []error
			tokens := map[string]bool{}
			for time.Now().Before(deadline) && ctx.Err() == nil && take() {
				t0 := time.Now()
				s, err := c.Logical().ReadWithContext(ctx, path)
				if err == nil && (s == nil || s.LeaseID == "") {
					err = fmt.Errorf("read answered without a lease: %+v", s)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				lat = append(lat, time.Since(t0))
				if tok, ok := s.Data["access_token"].(string); ok {
					tokens[tok] = true
				}
			}
			mu.Lock()
			res.reads += len(lat)
			res.latencies = append(res.latencies, lat...)
			res.errs = append(res.errs, errs...)
			for tok := range tokens {
				res.tokens[tok] = true
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}

// TestCancelledReads has clients give up on reads after a short, random
// time, as impatient applications do under load, then revokes every lease
// of the credential. The engine must count only the leases Vault holds: a
// lease count left behind keeps the shared token live upstream after every
// lease is revoked, which `vault lease revoke -prefix` promises it is not.
func TestCancelledReads(t *testing.T) {
	showLogOnFailure(t, env.vault)
	const clients = 32
	duration := pick(3*time.Second, 15*time.Second)
	c := env.client
	ctx, cancel := context.WithTimeout(context.Background(), duration+3*time.Minute)
	defer cancel()

	const mount, name = mountPath + "-cancel", "impatient"
	emu := loadMount(ctx, t, mount, time.Hour)
	authorize(t, c, mount, emu, name)
	first := readCreds(t, c, mount, name)

	ok, cancelled := runImpatient(ctx, c.Token(), env.vault.Addr,
		mount+"/creds/"+name, clients, duration, 50_000)
	// Let the server finish the reads its clients left.
	time.Sleep(time.Second)

	counted := credStatus(ctx, t, c, mount, name).leases
	held := len(listLeases(ctx, t, c, mount+"/creds/"+name+"/"))
	if err := c.Sys().RevokePrefixWithContext(ctx, mount+"/creds/"+name); err != nil {
		t.Fatalf("revoke-prefix: %v", err)
	}
	left := credStatus(ctx, t, c, mount, name).leases
	live := emu.IsLive(first.AccessToken)

	report(t, "cancelled reads",
		fmt.Sprintf("%d clients reading creds/%s for %v, each giving up on a read after "+
			"a random 20-300ms; then revoke-prefix", clients, name, duration),
		fmt.Sprintf("%d reads answered, %d cancelled by their clients; engine counted "+
			"%d leases, Vault held %d; after revoke-prefix the engine still counts %d "+
			"and the shared token is live upstream: %v", ok, cancelled, counted, held,
			left, live))
	if counted > held || left > 0 || live {
		// TODO(phantom lease counts): an error, not a skip, once the
		// engine no longer counts leases of reads whose answer was dropped.
		knownBug(t, "leaseCurrent in backend/secret_access_token.go, TODO(phantom lease counts)",
			fmt.Sprintf("%d cancelled reads left %d lease counts without a Vault "+
				"lease; after revoke-prefix the token is live upstream: %v",
				cancelled, counted-held, live))
	}
}

// runImpatient has n clients read path until d passes, each read given up
// after a random 20-300ms; it returns how many reads were answered and how
// many the clients cancelled.
func runImpatient(ctx context.Context, token, addr, path string, n int, d time.Duration,
	maxReads int,
) (int, int) {
	deadline := time.Now().Add(d)
	var (
		mu            sync.Mutex
		ok, cancelled int
		wg            sync.WaitGroup
	)
	for i := range n {
		c, err := newClient(addr, token)
		if err != nil {
			panic(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < maxReads/n && time.Now().Before(deadline); k++ {
				patience := time.Duration(20+(i*37+k*53)%280) * time.Millisecond
				rctx, rcancel := context.WithTimeout(ctx, patience)
				_, err := c.Logical().ReadWithContext(rctx, path)
				rcancel()
				mu.Lock()
				if err == nil {
					ok++
				} else {
					cancelled++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok, cancelled
}

// loadMount enables the plugin at mount with leases of ttl, configured
// against a new emulator, and removes it when t ends.
func loadMount(ctx context.Context, t *testing.T, mount string,
	ttl time.Duration,
) *accountstest.Server {
	t.Helper()
	c := env.client
	emu := accountstest.NewServer(accountstest.Options{})
	t.Cleanup(emu.Close)
	emu.AddClient(accountstest.Client{
		ID: clientID, Secret: clientSecret,
		RedirectURIs: []string{emu.URL + "/callback"},
	})
	err := c.Sys().MountWithContext(ctx, mount, &api.MountInput{
		Type:   pluginName,
		Config: api.MountConfigInput{DefaultLeaseTTL: ttl.String()},
	})
	if err != nil {
		t.Fatalf("enable at %s: %v", mount, err)
	}
	t.Cleanup(func() { c.Sys().Unmount(mount) })
	err = vaulttest.Configure(ctx, c, mount, clientID, clientSecret, emu.URL)
	if err != nil {
		t.Fatal(err)
	}
	return emu
}

// TestSummary prints the table of what the reliability tests tried and
// what held. It runs after them (Go runs the tests of a package in the
// order of their files and declarations). With E2E_SUMMARY_OUT it also
// writes the table to that file, which `make test-full` prints last.
func TestSummary(t *testing.T) {
	printSummary(os.Stdout)
	if p := os.Getenv("E2E_SUMMARY_OUT"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		printSummary(f)
	}
}
