//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

// This file holds what the reliability tests (audit, failover, load) share:
// the quick or full form, the summary they report to, an emulator that
// records every secret it sees, a Raft cluster of real servers, and the
// memory of processes.

// fullForm reports whether E2E_FULL asks for the long forms (make
// test-full): longer load, longer failover load.
func fullForm() bool {
	v := os.Getenv("E2E_FULL")
	return v != "" && v != "0" && v != "false"
}

// pick returns quick in the quick form and full in the full form.
func pick[T any](quick, full T) T {
	if fullForm() {
		return full
	}
	return quick
}

// summaryRow is one line of the table TestSummary prints: what a test
// tried, what held, and whether the test passed.
type summaryRow struct {
	test    string
	part    string
	tried   string
	held    string
	pass    bool
	skipped string // why the test skipped, e.g. a known bug
}

var summary struct {
	sync.Mutex
	rows []*summaryRow
}

// report logs what t tried and what held, and adds it to the summary; the
// row's verdict is the test's, known when t ends.
func report(t *testing.T, part, tried, held string) {
	t.Helper()
	t.Logf("%s\n  tried: %s\n  held:  %s", part, tried, held)
	row := &summaryRow{test: t.Name(), part: part, tried: tried, held: held}
	summary.Lock()
	summary.rows = append(summary.rows, row)
	summary.Unlock()
	t.Cleanup(func() {
		summary.Lock()
		row.pass = !t.Failed()
		summary.Unlock()
	})
}

// knownBug marks t's summary rows as showing a known bug, then skips t, so
// the suite stays green while the table says what is broken and where.
func knownBug(t *testing.T, where, what string) {
	t.Helper()
	summary.Lock()
	for _, r := range summary.rows {
		if r.test == t.Name() {
			r.skipped = where
		}
	}
	summary.Unlock()
	t.Skipf("KNOWN BUG (%s): %s", where, what)
}

// printSummary writes the summary as a markdown table to w. Rows already
// in markdown ("| part | tried | held | result |") may come from the file
// named by E2E_SUMMARY_ROWS: make test-full puts the unit-level parts of
// the suite there (bad input, provider faults, fuzzing).
func printSummary(w io.Writer) {
	fmt.Fprintln(w, "\n## Reliability and security: what was tried and what held")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| part | tried | held | result |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	if p := os.Getenv("E2E_SUMMARY_ROWS"); p != "" {
		if b, err := os.ReadFile(p); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if strings.HasPrefix(line, "|") {
					fmt.Fprintln(w, line)
				}
			}
		}
	}
	summary.Lock()
	defer summary.Unlock()
	for _, r := range summary.rows {
		verdict := "PASS"
		switch {
		case !r.pass:
			verdict = "FAIL"
		case r.skipped != "":
			verdict = "KNOWN BUG, " + r.skipped
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", cell(r.part), cell(r.tried),
			cell(r.held), verdict)
	}
	fmt.Fprintln(w)
}

// cell makes s fit in one markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// tappedEmulator is an emulator behind a recording tap: every secret value
// that crosses its HTTP endpoints (client secrets, codes and tokens sent to
// it, access and refresh tokens it answers with) is remembered, so a test
// can search logs for the values the plugin saw but never showed, such as
// the refresh token of a code exchange.
type tappedEmulator struct {
	*accountstest.Emulator
	URL string

	mu      sync.Mutex
	secrets map[string]tapped // by value
}

// tapped is what a secret value that crossed the tap is.
type tapped struct {
	kind string // one of the kind* constants of audit_test.go
	what string
}

// newTappedEmulator starts an emulator on 127.0.0.1 behind the tap. The
// tap buffers each answer, so the Reset fault (which hijacks the
// connection) is not available through it.
func newTappedEmulator(t *testing.T, opts accountstest.Options) *tappedEmulator {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	te := &tappedEmulator{
		Emulator: accountstest.New(opts),
		URL:      "http://" + l.Addr().String(),
		secrets:  map[string]tapped{},
	}
	te.SetBaseURL(te.URL)
	srv := &http.Server{Handler: te, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return te
}

// ServeHTTP records the secrets of the request, serves it through the
// emulator and records the secrets of the answer.
func (te *tappedEmulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	for k, vs := range r.URL.Query() {
		form[k] = append(form[k], vs...)
	}
	for k, kind := range map[string]string{"client_secret": kindClientSecret,
		"code": kindCode, "refresh_token": kindRefresh, "token": kindToken} {
		for _, v := range form[k] {
			te.remember(v, kind, k+" sent to the accounts server")
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if _, tok, ok := strings.Cut(h, " "); ok {
			te.remember(tok, kindAccess, "token sent to the CRM API")
		}
	}

	rec := httptest.NewRecorder()
	te.Emulator.ServeHTTP(rec, r)
	var answer map[string]any
	if json.Unmarshal(rec.Body.Bytes(), &answer) == nil {
		for k, kind := range map[string]string{"access_token": kindAccess,
			"refresh_token": kindRefresh} {
			if v, ok := answer[k].(string); ok {
				te.remember(v, kind, k+" answered by the accounts server")
			}
		}
	}
	if loc := rec.Header().Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			te.remember(u.Query().Get("code"), kindCode, "grant code in a redirect")
		}
	}

	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// remember notes a secret value; empty values and very short ones (which
// would match by chance) are ignored.
func (te *tappedEmulator) remember(value, kind, what string) {
	if len(value) < 8 {
		return
	}
	te.mu.Lock()
	defer te.mu.Unlock()
	if _, ok := te.secrets[value]; !ok {
		te.secrets[value] = tapped{kind: kind, what: what}
	}
}

// seen returns every secret value the tap recorded, with what it was.
func (te *tappedEmulator) seen() map[string]tapped {
	te.mu.Lock()
	defer te.mu.Unlock()
	out := make(map[string]tapped, len(te.secrets))
	for k, v := range te.secrets {
		out[k] = v
	}
	return out
}

// raftNode is one server of a Raft cluster.
type raftNode struct {
	id     string
	addr   string // http://127.0.0.1:<api port>
	v      *vaulttest.Process
	client *api.Client
}

// raftCluster is real Vault servers on loopback sharing integrated storage.
type raftCluster struct {
	nodes     []*raftNode
	unsealKey string
	rootToken string
}

// startRaftCluster starts n servers with Raft storage, initializes the
// first with one key share, joins the others to it and unseals them all.
// The servers stop (SIGTERM) when t ends.
func startRaftCluster(ctx context.Context, t *testing.T, n int) *raftCluster {
	t.Helper()
	dir := t.TempDir()
	rc := &raftCluster{}
	for i := 1; i <= n; i++ {
		node := startRaftNode(t, dir, fmt.Sprintf("node%d", i))
		rc.nodes = append(rc.nodes, node)
	}
	for _, node := range rc.nodes {
		if err := node.v.WaitResponding(ctx); err != nil {
			t.Fatalf("%s: %v", node.id, err)
		}
	}

	first := rc.nodes[0]
	var err error
	rc.unsealKey, rc.rootToken, err = vaulttest.Init(ctx, first.client)
	if err != nil {
		t.Fatalf("%s: %v", first.id, err)
	}
	for _, node := range rc.nodes {
		node.client.SetToken(rc.rootToken)
	}
	if err := vaulttest.Unseal(ctx, first.client, rc.unsealKey); err != nil {
		t.Fatalf("%s: %v", first.id, err)
	}

	// Autopilot makes a joined server a voter once it has been healthy for
	// server_stabilization_time (10s by default); loopback needs less.
	// (The API client's PutRaftAutopilotConfiguration sends an Enterprise
	// field that OSS refuses, so the one field is written as is.)
	_, err = first.client.Logical().WriteWithContext(ctx,
		"sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "2s"})
	if err != nil {
		t.Fatalf("write autopilot configuration: %v", err)
	}

	// A server joins when it is unsealed after the join request: it proves
	// it holds the key by answering the leader's challenge.
	for _, node := range rc.nodes[1:] {
		resp, err := node.client.Sys().RaftJoinWithContext(ctx,
			&api.RaftJoinRequest{LeaderAPIAddr: first.addr})
		if err != nil || !resp.Joined {
			t.Fatalf("join %s to %s: %v (joined %v)", node.id, first.id, err,
				resp != nil && resp.Joined)
		}
		if _, err := node.client.Sys().UnsealWithContext(ctx, rc.unsealKey); err != nil {
			t.Fatalf("unseal %s: %v", node.id, err)
		}
	}
	for _, node := range rc.nodes[1:] {
		if err := waitStandby(ctx, node.client); err != nil {
			t.Fatalf("%s: %v", node.id, err)
		}
	}

	// Only voters elect a new leader: losing the leader before the others
	// vote would lose the cluster.
	if err := waitVoters(ctx, first.client, n); err != nil {
		t.Fatal(err)
	}
	return rc
}

// waitVoters polls autopilot until the cluster has n healthy voters.
func waitVoters(ctx context.Context, c *api.Client, n int) error {
	for {
		st, err := c.Sys().RaftAutopilotStateWithContext(ctx)
		if err == nil && st != nil && st.Healthy && len(st.Voters) == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not reach %d healthy voters: %v (%v)",
				n, err, st)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startRaftNode writes the config of one server and starts it.
func startRaftNode(t *testing.T, dir, id string) *raftNode {
	t.Helper()
	apiPort, err := vaulttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	clusterPort, err := vaulttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	nodeDir := filepath.Join(dir, id)
	if err := os.MkdirAll(filepath.Join(nodeDir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	addr := "http://127.0.0.1:" + apiPort

	// performance_multiplier 1 is Raft's tightest timing, fit for
	// loopback: a leader is replaced within seconds.
	config := fmt.Sprintf(`
storage "raft" {
  path                   = %q
  node_id                = %q
  performance_multiplier = 1

  autopilot_reconcile_interval = "1s"
  autopilot_update_interval    = "1s"
}

listener "tcp" {
  address         = "127.0.0.1:%s"
  cluster_address = "127.0.0.1:%s"
  tls_disable     = true
}

api_addr         = %q
cluster_addr     = "https://127.0.0.1:%s"
plugin_directory = %q
disable_mlock    = true
log_level        = "debug"
`, filepath.Join(nodeDir, "raft"), id, apiPort, clusterPort, addr, clusterPort,
		env.plugin.Dir)
	configPath := filepath.Join(nodeDir, "vault.hcl")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	v, err := vaulttest.Start(env.vaultBin, addr, filepath.Join(nodeDir, "vault.log"),
		"server", "-config="+configPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	showLogOnFailure(t, v)

	c, err := newClient(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	return &raftNode{id: id, addr: addr, v: v, client: c}
}

// waitStandby polls until the server is an unsealed standby.
func waitStandby(ctx context.Context, c *api.Client) error {
	for {
		h, err := c.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed && h.Standby {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("did not become a standby: %v (health %+v)", err, h)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leader returns the active node among the running ones, or nil.
func (rc *raftCluster) leader(ctx context.Context) *raftNode {
	for _, node := range rc.running() {
		h, err := node.client.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return node
		}
	}
	return nil
}

// running returns the nodes whose process has not ended.
func (rc *raftCluster) running() []*raftNode {
	var out []*raftNode
	for _, node := range rc.nodes {
		if !node.v.Exited() {
			out = append(out, node)
		}
	}
	return out
}

// waitLeader polls until a running node other than old is active and the
// others name it as leader; it returns that node.
func (rc *raftCluster) waitLeader(ctx context.Context, old *raftNode) (*raftNode, error) {
	for {
		if l := rc.leader(ctx); l != nil && l != old && rc.agree(ctx, l) {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no new leader: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// agree reports whether every running node names l as the leader.
func (rc *raftCluster) agree(ctx context.Context, l *raftNode) bool {
	for _, node := range rc.running() {
		lr, err := node.client.Sys().LeaderWithContext(ctx)
		if err != nil || lr.LeaderAddress != l.addr {
			return false
		}
	}
	return true
}

// pluginPID returns the pid of the plugin process that the vault process
// v runs, or 0.
func pluginPID(v *vaulttest.Process) int {
	return vaulttest.ChildWithExe(v.PID(), env.plugin.Path)
}

// rssMiB returns the resident memory of pid in MiB, or -1.
func rssMiB(pid int) float64 {
	b, err := vaulttest.RSS(pid)
	if err != nil {
		return -1
	}
	return float64(b) / (1 << 20)
}
