//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// TestFailover runs three real servers in one Raft cluster, reads a
// credential through a standby, and stops the leader in the middle of a
// stream of reads. After a new leader is elected, reads succeed again, the
// credential and its lease counts are intact, and revoking the leases
// issued by the old leader still revokes the token upstream.
func TestFailover(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	emu := accountstest.NewServer(accountstest.Options{})
	t.Cleanup(emu.Close)
	emu.AddClient(accountstest.Client{
		ID: clientID, Secret: clientSecret,
		RedirectURIs: []string{emu.URL + "/callback"},
	})

	rc := startRaftCluster(ctx, t, 3)
	formed := time.Since(began)
	old := rc.leader(ctx)
	if old == nil {
		t.Fatal("no active node after forming the cluster")
	}
	var standbys []*raftNode
	for _, n := range rc.nodes {
		if n != old {
			standbys = append(standbys, n)
		}
	}
	t.Logf("cluster of %d formed in %v; leader %s (%s)", len(rc.nodes),
		formed.Round(time.Millisecond), old.id, old.addr)

	// The catalog and mount table are replicated; each node finds the
	// binary in its own plugin_directory.
	if err := enablePlugin(ctx, old.client, mountPath, emu.URL); err != nil {
		t.Fatal(err)
	}
	const name = "failover"
	stored := authorize(t, old.client, mountPath, emu, name)
	createdAt := stored["created_at"]

	// Standbys forward to the active node: a client that does not follow
	// redirects is served by the standby itself.
	cfg := api.DefaultConfig()
	cfg.Address, cfg.MaxRetries, cfg.DisableRedirects = standbys[0].addr, 0, true
	direct, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	direct.SetToken(rc.rootToken)
	first := readCreds(t, direct, mountPath, name)
	wantCRM(t, emu, first, http.StatusOK)

	// A second credential read only before the failover: its token ends
	// with the leases the old leader issued.
	const quiet = "quiet"
	authorize(t, old.client, mountPath, emu, quiet)
	var quietLeases []lease
	for range 3 {
		quietLeases = append(quietLeases, readCreds(t, standbys[1].client, mountPath, quiet))
	}
	countsBefore := emu.Counts()

	load := startFailoverLoad(standbys, name, pick(2000, 20000),
		pick(90*time.Second, 3*time.Minute))
	defer load.stop()

	// Enough reads to be mid-load, then SIGTERM to the leader.
	if !load.waitSuccesses(ctx, pick(30, 200), 30*time.Second) {
		load.stop()
		t.Fatalf("the load made only %d reads before the failover; errors: %v",
			load.successes(), load.firstErrors(3))
	}
	stoppedAt := time.Now()
	preStop := load.successes()
	old.v.Stop()
	stopTook := time.Since(stoppedAt)

	leader, err := rc.waitLeader(ctx, old)
	if err != nil {
		load.stop()
		t.Fatal(err)
	}
	electedAt := time.Now()
	elected := electedAt.Sub(stoppedAt)
	t.Logf("SIGTERM to %s; it exited after %v; %s leads %v after the signal",
		old.id, stopTook.Round(time.Millisecond), leader.id, elected.Round(time.Millisecond))

	// Keep reading on the new leader a while, then stop the load.
	afterElection := time.Now()
	recovered := load.waitSuccessesAfter(ctx, afterElection, pick(30, 300), 60*time.Second)
	if full := pick(0, 10*time.Second); full > 0 {
		time.Sleep(full)
	}
	load.stop()
	res := load.result()
	if !recovered {
		t.Errorf("fewer than %d reads succeeded after the new leader was elected "+
			"(%d did); errors: %v", pick(30, 300), res.okAfter(afterElection),
			load.firstErrors(3))
	}
	// Reads fail only while there is no leader, and a moment after.
	for _, e := range res.errs {
		if e.at.Before(stoppedAt) || e.at.After(electedAt.Add(5*time.Second)) {
			t.Errorf("a read failed %v after the signal, outside the failover: %v",
				e.at.Sub(stoppedAt).Round(time.Millisecond), e.err)
		}
	}

	// The old leader, started again and unsealed, rejoins as a standby.
	if err := old.v.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := old.v.WaitResponding(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.client.Sys().UnsealWithContext(ctx, rc.unsealKey); err != nil {
		t.Fatalf("unseal %s: %v", old.id, err)
	}
	if err := waitStandby(ctx, old.client); err != nil {
		t.Fatalf("%s after its restart: %v", old.id, err)
	}
	if l, err := rc.waitLeader(ctx, old); err != nil || l != leader {
		t.Fatalf("after %s rejoined: leader %v, %v; want %s", old.id, l, err, leader.id)
	}

	// Every surviving node serves reads again.
	loadOK := len(res.issued)
	for _, n := range rc.running() {
		l := readCreds(t, n.client, mountPath, name)
		res.issued = append(res.issued, loadRead{lease: l, at: time.Now()})
	}

	// The credential is the one written before the failover.
	st := credStatus(ctx, t, leader.client, mountPath, name)
	if st.createdAt != createdAt {
		t.Errorf("created_at after the failover = %v, want %v", st.createdAt, createdAt)
	}

	// Lease counts: the engine's, Vault's and what clients were given.
	vaultLeases := listLeases(ctx, t, leader.client, mountPath+"/creds/"+name+"/")
	issued := len(res.issued) + 1
	for _, r := range append(res.issued, loadRead{lease: first}) {
		if !slices.Contains(vaultLeases, r.lease.ID) {
			t.Errorf("lease %s, issued to a client, is unknown to Vault after the failover",
				r.lease.ID)
		}
	}
	if st.leases != len(vaultLeases) {
		t.Errorf("the engine counts %d leases, Vault holds %d: a count was lost",
			st.leases, len(vaultLeases))
	}
	if len(vaultLeases) < issued {
		t.Errorf("Vault holds %d leases, clients were given %d", len(vaultLeases), issued)
	}
	lost := len(vaultLeases) - issued

	// The new leader runs its own plugin process.
	newPID := pluginPID(leader.v)
	if newPID == 0 {
		t.Errorf("no %s process under the new leader %s", pluginName, leader.id)
	}

	// The quiet credential's leases, all from the old leader, revoked on
	// the new one: the last revokes its token upstream.
	quietBefore := emu.Counts()
	for i, l := range quietLeases {
		revokeLease(t, leader.client, l.ID)
		wantLive := i < len(quietLeases)-1
		if got := emu.IsLive(l.AccessToken); got != wantLive {
			t.Errorf("after revoking %d of %d leases from the old leader, the token is "+
				"live upstream: %v, want %v", i+1, len(quietLeases), got, wantLive)
		}
	}
	if d := emu.Counts().Revocations - quietBefore.Revocations; d != 1 {
		t.Errorf("revoking the quiet credential's leases made %d upstream revocations, "+
			"want 1", d)
	}
	wantCRM(t, emu, quietLeases[0], http.StatusUnauthorized)

	// Revoke the leases the old leader issued, one by one, on the new one.
	var pre []lease
	pre = append(pre, first)
	for _, r := range res.issued {
		if r.at.Before(stoppedAt) {
			pre = append(pre, r.lease)
		}
	}
	beforeRevoke := emu.Counts()
	for _, l := range pre {
		revokeLease(t, leader.client, l.ID)
	}
	st2 := credStatus(ctx, t, leader.client, mountPath, name)
	if st2.leases != st.leases-len(pre) {
		t.Errorf("after revoking %d leases from before the failover the engine counts "+
			"%d, want %d", len(pre), st2.leases, st.leases-len(pre))
	}

	// Then the rest: the last lease on each token revokes it upstream.
	if err := leader.client.Sys().RevokePrefixWithContext(ctx,
		mountPath+"/creds/"+name); err != nil {
		t.Fatalf("revoke-prefix: %v", err)
	}
	upstream := emu.Counts().Revocations - beforeRevoke.Revocations
	tokens := map[string]bool{first.AccessToken: true}
	for _, r := range res.issued {
		tokens[r.lease.AccessToken] = true
	}
	live := 0
	for tok := range tokens {
		if emu.IsLive(tok) {
			live++
		}
	}
	if live != 0 {
		t.Errorf("%d of %d access tokens handed out are still live upstream after "+
			"every lease was revoked", live, len(tokens))
	}
	if upstream != len(tokens) {
		t.Errorf("revoking every lease made %d upstream revocations, want %d (one a token)",
			upstream, len(tokens))
	}
	wantCRM(t, emu, first, http.StatusUnauthorized)
	st3 := credStatus(ctx, t, leader.client, mountPath, name)
	if st3.leases != 0 {
		t.Errorf("the engine still counts %d leases after revoke-prefix", st3.leases)
	}
	if rest := listLeases(ctx, t, leader.client, mountPath+"/creds/"+name+"/"); len(rest) != 0 {
		t.Errorf("Vault still holds %d leases after revoke-prefix", len(rest))
	}

	countsAfter := emu.Counts()
	report(t, "failover (3-node Raft)",
		fmt.Sprintf("3 servers on 127.0.0.1 in one Raft cluster (formed in %v); "+
			"credential written on %s, read through standby %s (forwarded, no redirect); "+
			"%d load clients "+
			"reading through the standbys; SIGTERM to leader %s after %d reads",
			formed.Round(100*time.Millisecond), old.id, standbys[0].id, len(standbys)*2,
			old.id, preStop),
		fmt.Sprintf("new leader %s after %v; reads: %d ok, %d failed (all within "+
			"%v of the signal: %s), %d ok after the election; the old leader, "+
			"restarted, rejoins as a standby; all 3 nodes serve reads; created_at "+
			"unchanged; "+
			"plugin process running on the new leader (pid %d); %d leases of a "+
			"credential read only before the failover, revoked on the new leader: its "+
			"token revoked upstream with the last; "+
			"engine lease count %d = Vault's %d (clients saw %d, answers lost in the "+
			"failover %d); %d leases from the old leader revoked one by one, then "+
			"the rest by prefix: %d/%d tokens revoked upstream, none live; upstream "+
			"mints during load and failover: %d",
			leader.id, elected.Round(time.Millisecond), loadOK, len(res.errs),
			res.errorSpan(stoppedAt).Round(time.Millisecond), res.errorKinds(old.addr),
			res.okAfter(afterElection), newPID, len(quietLeases),
			st.leases, len(vaultLeases), issued, lost, len(pre), upstream, len(tokens),
			countsAfter.Refreshes-countsBefore.Refreshes))
}

// failoverLoad is a bounded stream of reads through some nodes.
type failoverLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	issued []loadRead
	errs   []loadError
}

type loadRead struct {
	lease lease
	at    time.Time // when the answer came
}

type loadError struct {
	err error
	at  time.Time
}

// startFailoverLoad starts two readers of creds/<name> per node, each
// pausing 20ms between reads, until stop, maxReads reads or maxTime. A read
// in flight at the end is waited for (10s at most), not cancelled.
func startFailoverLoad(nodes []*raftNode, name string, maxReads int,
	maxTime time.Duration,
) *failoverLoad {
	ctx, cancel := context.WithTimeout(context.Background(), maxTime)
	fl := &failoverLoad{cancel: cancel}
	var budget sync.Mutex
	left := maxReads
	take := func() bool {
		budget.Lock()
		defer budget.Unlock()
		left--
		return left >= 0
	}
	for _, n := range nodes {
		for range 2 {
			c, err := newClient(n.addr, n.client.Token())
			if err != nil {
				panic(err)
			}
			c.SetClientTimeout(10 * time.Second)
			fl.wg.Add(1)
			go func() {
				defer fl.wg.Done()
				for ctx.Err() == nil && take() {
					fl.readOnce(c, name)
					select {
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
		}
	}
	return fl
}

func (fl *failoverLoad) readOnce(c *api.Client, name string) {
	s, err := c.Logical().ReadWithContext(context.Background(), mountPath+"/creds/"+name)
	now := time.Now()
	if err == nil && (s == nil || s.LeaseID == "") {
		err = fmt.Errorf("read answered without a lease: %+v", s)
	}
	if err != nil {
		fl.mu.Lock()
		fl.errs = append(fl.errs, loadError{err: err, at: now})
		fl.mu.Unlock()
		return
	}
	fl.add(s, now)
}

func (fl *failoverLoad) add(s *api.Secret, at time.Time) {
	tok, _ := s.Data["access_token"].(string)
	fl.mu.Lock()
	fl.issued = append(fl.issued, loadRead{
		lease: lease{ID: s.LeaseID, AccessToken: tok},
		at:    at,
	})
	fl.mu.Unlock()
}

// stop ends the load and waits for the readers.
func (fl *failoverLoad) stop() {
	fl.once.Do(func() {
		fl.cancel()
		fl.wg.Wait()
	})
}

func (fl *failoverLoad) successes() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return len(fl.issued)
}

// waitSuccesses waits up to d for n successful reads in all.
func (fl *failoverLoad) waitSuccesses(ctx context.Context, n int, d time.Duration) bool {
	return fl.waitSuccessesAfter(ctx, time.Time{}, n, d)
}

// waitSuccessesAfter waits up to d for n successful reads answered after
// since.
func (fl *failoverLoad) waitSuccessesAfter(ctx context.Context, since time.Time, n int,
	d time.Duration,
) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		fl.mu.Lock()
		r := failoverResult{issued: fl.issued}
		ok := r.okAfter(since) >= n
		fl.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (fl *failoverLoad) firstErrors(n int) []string {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	var out []string
	for _, e := range fl.errs[:min(n, len(fl.errs))] {
		out = append(out, strings.TrimSpace(e.err.Error()))
	}
	return out
}

// result returns what the load did; call it after stop.
func (fl *failoverLoad) result() failoverResult {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return failoverResult{issued: slices.Clone(fl.issued), errs: slices.Clone(fl.errs)}
}

type failoverResult struct {
	issued []loadRead
	errs   []loadError
}

func (r failoverResult) okAfter(since time.Time) int {
	n := 0
	for _, x := range r.issued {
		if x.at.After(since) {
			n++
		}
	}
	return n
}

// errorSpan is how long after from the last failed read came (0 without
// failures).
func (r failoverResult) errorSpan(from time.Time) time.Duration {
	var last time.Duration
	for _, e := range r.errs {
		last = max(last, e.at.Sub(from))
	}
	return last
}

// errorKinds sums up the failed reads by kind, such as "HTTP 503 ×4". A
// standby that cannot forward redirects the client to the leader it knew,
// oldAddr.
func (r failoverResult) errorKinds(oldAddr string) string {
	if len(r.errs) == 0 {
		return "none"
	}
	n := map[string]int{}
	for _, e := range r.errs {
		kind := "other"
		msg := e.err.Error()
		switch {
		case strings.Contains(msg, strings.TrimPrefix(oldAddr, "http://")):
			kind = "redirected to the stopped leader"
		case statusOf(e.err) != 0:
			kind = fmt.Sprintf("HTTP %d", statusOf(e.err))
		case strings.Contains(msg, "connection refused"):
			kind = "connection refused"
		case strings.Contains(msg, "EOF"), strings.Contains(msg, "reset"):
			kind = "connection closed"
		case strings.Contains(msg, "deadline"), strings.Contains(msg, "timeout"):
			kind = "timeout"
		}
		n[kind]++
	}
	var parts []string
	for k, v := range n {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// credState is what creds/<name>/status shows that the tests compare.
type credState struct {
	createdAt any
	leases    int
	tokens    int
}

// credStatus reads creds/<name>/status and sums the leases of its live
// tokens.
func credStatus(ctx context.Context, t *testing.T, c *api.Client, mount, name string) credState {
	t.Helper()
	s, err := c.Logical().ReadWithContext(ctx, mount+"/creds/"+name+"/status")
	if err != nil || s == nil {
		t.Fatalf("read %s/creds/%s/status: %v", mount, name, err)
	}
	st := credState{createdAt: s.Data["created_at"]}
	toks, _ := s.Data["live_tokens"].([]any)
	for _, x := range toks {
		m, _ := x.(map[string]any)
		st.tokens++
		if n, ok := m["leases"].(json.Number); ok {
			v, _ := n.Int64()
			st.leases += int(v)
		}
	}
	return st
}

// listLeases lists the lease ids Vault holds under prefix (which ends in
// a slash).
func listLeases(ctx context.Context, t *testing.T, c *api.Client, prefix string) []string {
	t.Helper()
	s, err := c.Logical().ListWithContext(ctx, "sys/leases/lookup/"+prefix)
	if err != nil {
		t.Fatalf("list sys/leases/lookup/%s: %v", prefix, err)
	}
	if s == nil {
		return nil
	}
	keys, _ := s.Data["keys"].([]any)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if s, ok := k.(string); ok {
			out = append(out, prefix+s)
		}
	}
	return out
}
