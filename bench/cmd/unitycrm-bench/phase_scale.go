package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

// scaleResult is the engine holding many credentials and leases in a
// Vault with file storage.
type scaleResult struct {
	creds, reads int
	conc         int
	storageDir   string

	createWall, readWall time.Duration
	createErrs, readErrs int
	firstErr             string

	// Token requests the emulator saw while creating and while reading.
	createRequests, readRequests int

	// Storage entries under the mount (by top-level prefix) and of
	// Vault's leases on it, counted as files of the file backend.
	mountEntries map[string]int
	leaseEntries int

	// VmRSS of the plugin and of Vault: configured and empty, after the
	// credentials, after the reads.
	pluginRSS, vaultRSS [3]int64

	// The mount's rollback (the periodic function and the WAL rollback)
	// as Vault's telemetry timed it, once it ran after the reads.
	periodic       time.Duration
	periodicMetric string
	// The plugin's own "periodic done" log line, when it has one.
	periodicLog []string
}

// runScale starts a Vault with file storage, creates o.scaleCreds
// credentials by refresh-token import and reads each o.leasesPerCred
// times, then measures what that left behind.
func runScale(ctx context.Context, o *options, p *vaulttest.Plugin) (*scaleResult, error) {
	emu := newEmulator()
	defer emu.Close()

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp(o.storageParent, "unitycrm-bench-storage-")
	if err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(dataDir)
	}
	cfgPath := filepath.Join(o.tmp, "vault-file.hcl")
	err = writeFile(cfgPath, fmt.Sprintf(`storage "file" {
  path = %q
}
listener "tcp" {
  address     = %q
  tls_disable = true
}
plugin_directory = %q
api_addr         = "http://%s"
disable_mlock    = true
log_level        = "debug"
telemetry {
  disable_hostname                 = true
  add_mount_point_rollback_metrics = true
}
`, dataDir, addr, p.Dir, addr))
	if err != nil {
		return nil, err
	}
	v, err := vaulttest.Start(o.vaultBin, "http://"+addr, filepath.Join(o.tmp, "vault-file.log"),
		"server", "-config="+cfgPath)
	if err != nil {
		return nil, err
	}
	defer v.Stop()
	say("scale: Vault (file storage in %s) pid %d at %s, log %s", dataDir, v.PID(), v.Addr,
		v.LogPath)

	c, err := initServer(ctx, v)
	if err != nil {
		return nil, err
	}
	res := &scaleResult{creds: o.scaleCreds, reads: o.scaleCreds * o.leasesPerCred,
		conc: o.scaleConc, storageDir: o.storageParent}
	if err := enableEngine(ctx, c, p, emu, 30*time.Minute); err != nil {
		return nil, err
	}
	pluginPid, err := waitChild(ctx, v.PID(), p.Path)
	if err != nil {
		return nil, err
	}
	rss := func(i int) {
		res.pluginRSS[i], _ = vaulttest.RSS(pluginPid)
		res.vaultRSS[i], _ = vaulttest.RSS(v.PID())
	}
	rss(0)

	// Refresh tokens made elsewhere, one user each, imported in parallel.
	tokens := make([]string, res.creds)
	for i := range tokens {
		tokens[i] = emu.IssueRefreshToken(clientID, fmt.Sprintf("user%05d@example.org", i),
			[]string{"ZohoCRM.modules.ALL"})
	}
	before := emu.Counts()
	say("scale: importing %d credentials, %d at a time", res.creds, res.conc)
	var errMu sync.Mutex
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if res.firstErr == "" {
			res.firstErr = err.Error()
		}
	}
	start := time.Now()
	res.createErrs = parallel(ctx, res.creds, res.conc, func(i int) error {
		_, err := c.Logical().WriteWithContext(ctx, mountPath+"/creds/"+scaleName(i),
			map[string]any{"refresh_token": tokens[i]})
		if err != nil {
			fail(err)
		}
		return err
	})
	res.createWall = time.Since(start)
	mid := emu.Counts()
	res.createRequests = mid.TokenRequests - before.TokenRequests
	rss(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	say("scale: imported in %v (%d errors)", res.createWall.Round(time.Millisecond),
		res.createErrs)

	// Reads spread over every credential, each one a lease.
	l := &loader{hc: c.CloneConfig().HttpClient, token: c.Token()}
	say("scale: %d reads (%d per credential), %d at a time", res.reads, o.leasesPerCred,
		res.conc)
	start = time.Now()
	res.readErrs = parallel(ctx, res.reads, res.conc, func(i int) error {
		_, err := l.get(ctx, v.Addr+"/v1/"+mountPath+"/creds/"+scaleName(i%res.creds))
		if err != nil {
			fail(err)
		}
		return err
	})
	res.readWall = time.Since(start)
	readsDone := time.Now()
	res.readRequests = emu.Counts().TokenRequests - mid.TokenRequests
	rss(2)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	say("scale: read in %v (%d errors)", res.readWall.Round(time.Millisecond), res.readErrs)

	uuid, err := mountUUID(ctx, c, mountPath+"/")
	if err != nil {
		return nil, err
	}
	res.mountEntries, err = countFiles(filepath.Join(dataDir, "logical", uuid), true)
	if err != nil {
		return nil, err
	}
	leases, err := countFiles(filepath.Join(dataDir, "sys", "expire", "id", mountPath), false)
	if err != nil {
		return nil, err
	}
	res.leaseEntries = leases[""]

	say("scale: waiting for Vault's next rollback of %s/ (every minute) to time the "+
		"periodic function", mountPath)
	res.periodic, res.periodicMetric, err = waitRollback(ctx, c, readsDone, 100*time.Second)
	if err != nil {
		return nil, err
	}
	res.periodicLog = periodicLogLines(v.LogPath)
	say("scale: %s: slowest %v", res.periodicMetric, res.periodic)
	return res, nil
}

func scaleName(i int) string { return fmt.Sprintf("cred-%05d", i) }

// initServer initializes a fresh server with one unseal key, unseals it
// and returns a client with the root token.
func initServer(ctx context.Context, v *vaulttest.Process) (*api.Client, error) {
	c, err := startedClient(ctx, v, "")
	if err != nil {
		return nil, err
	}
	key, root, err := vaulttest.Init(ctx, c)
	if err != nil {
		return nil, err
	}
	c.SetToken(root)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return c, vaulttest.Unseal(wctx, c, key)
}

// parallel runs f(0..n-1) on conc workers and returns how many failed. It
// stops handing out work when ctx ends.
func parallel(ctx context.Context, n, conc int, f func(int) error) int {
	var (
		next, errs atomic.Int64
		wg         sync.WaitGroup
	)
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if f(i) != nil {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(errs.Load())
}

// mountUUID returns the storage uuid of the mount at path ("unitycrm/").
func mountUUID(ctx context.Context, c *api.Client, path string) (string, error) {
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return "", err
	}
	m, ok := mounts[path]
	if !ok || m.UUID == "" {
		return "", fmt.Errorf("no mount %s", path)
	}
	return m.UUID, nil
}

// countFiles counts the regular files under dir: the file backend keeps one
// per storage entry. byPrefix splits the count by the first directory under
// dir; otherwise everything counts under "".
func countFiles(dir string, byPrefix bool) (map[string]int, error) {
	out := map[string]int{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		key := ""
		if byPrefix {
			rel, _ := filepath.Rel(dir, path)
			if first, _, ok := strings.Cut(rel, string(filepath.Separator)); ok {
				key = first + "/"
			} else {
				key = strings.TrimPrefix(rel, "_")
			}
		}
		out[key]++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count storage entries: %w", err)
	}
	return out, nil
}

// waitRollback polls Vault's in-memory telemetry until it holds a timing of
// the rollback of the engine's mount from an interval that began after
// since, and returns the longest such rollback and the metric's name.
func waitRollback(ctx context.Context, c *api.Client, since time.Time, limit time.Duration,
) (time.Duration, string, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		d, name, err := rollbackSample(ctx, c, since)
		if err != nil {
			return 0, "", err
		}
		if name != "" {
			return d, name, nil
		}
		select {
		case <-ctx.Done():
			return 0, "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	return 0, "", fmt.Errorf("no rollback of %s/ timed within %v of the reads", mountPath,
		limit)
}

// rollbackSample reads sys/metrics (the last finished 10-second interval)
// and returns the longest rollback of the mount it holds, preferring the
// router's timing (the request into the backend) over the rollback
// manager's (which adds its own locking).
func rollbackSample(ctx context.Context, c *api.Client, since time.Time,
) (time.Duration, string, error) {
	r := c.NewRequest("GET", "/v1/sys/metrics")
	resp, err := c.RawRequestWithContext(ctx, r)
	if err != nil {
		return 0, "", fmt.Errorf("sys/metrics: %w", err)
	}
	defer resp.Body.Close()
	var m struct {
		Timestamp string
		Samples   []struct {
			Name  string
			Count int
			Max   float64 // milliseconds
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0, "", fmt.Errorf("decode sys/metrics: %w", err)
	}
	at, err := time.Parse("2006-01-02 15:04:05 -0700 MST", m.Timestamp)
	if err != nil {
		return 0, "", fmt.Errorf("sys/metrics timestamp %q: %w", m.Timestamp, err)
	}
	if at.Before(since) {
		return 0, "", nil
	}
	for _, want := range []string{"route.rollback." + mountPath + "-",
		"rollback.attempt." + mountPath + "-"} {
		for _, s := range m.Samples {
			if strings.HasSuffix(s.Name, want) && s.Count > 0 {
				return time.Duration(s.Max * float64(time.Millisecond)), s.Name, nil
			}
		}
	}
	return 0, "", nil
}

var periodicLine = regexp.MustCompile(`periodic done.*`)

// periodicLogLines returns the plugin's "periodic done" log lines, if the
// engine writes one.
func periodicLogLines(logPath string) []string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return nil
	}
	return periodicLine.FindAllString(string(b), -1)
}
