// Command unitycrm-bench measures the Unity CRM secrets engine side by side
// with Vault's own KV version 1 engine in one run on one machine, and
// prints the results as a markdown table (see bench/README.md):
//
//  1. the backend's in-process Go benchmarks;
//  2. creds reads against KV v1 reads through a real `vault server -dev`,
//     interleaved, at several concurrency levels;
//  3. the token requests the accounts-server emulator saw per 10,000 reads;
//  4. 10,000 credentials and 100,000 leases in a Vault with file storage:
//     storage entries, plugin memory and the periodic function.
//
// Run it with `make bench`, or from the checkout:
//
//	VAULT_BIN=$(scripts/vault/ensure.sh) go run ./bench/cmd/unitycrm-bench
//
// Everything listens on 127.0.0.1; every load loop is bounded in time or
// count; the only processes stopped are the Vault servers it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

type options struct {
	vaultBin string
	out      string
	tmp      string
	keep     bool
	timeout  time.Duration
	phases   map[string]bool

	levels                []int
	duration, window      time.Duration
	warm                  time.Duration
	logLevel              string
	scaleCreds, scaleConc int
	leasesPerCred         int
	storageParent         string

	profileDir     string
	profileSeconds int
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "unitycrm-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	o.tmp, err = os.MkdirTemp("", "unitycrm-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		say("keeping %s (logs, storage)", o.tmp)
	} else {
		defer os.RemoveAll(o.tmp)
	}

	r := &report{opts: o, started: time.Now(), command: commandLine(),
		machine: describeMachine(root, o.vaultBin), loadBefore: loadAverage()}
	if o.profileDir != "" {
		return runProfile(ctx, o, root)
	}

	if o.phases["go"] {
		r.goBench, err = runGoBench(ctx, root)
		if err != nil {
			return err
		}
	}

	p, err := vaulttest.BuildPlugin(root, "./cmd/"+pluginName, filepath.Join(o.tmp, "plugins"))
	if err != nil {
		return err
	}
	if o.phases["load"] {
		r.load, err = runLoad(ctx, o, p, nil)
		if err != nil {
			return fmt.Errorf("through Vault: %w", err)
		}
	}
	if o.phases["scale"] {
		r.scale, err = runScale(ctx, o, p)
		if err != nil {
			return fmt.Errorf("scale: %w", err)
		}
	}
	r.took = time.Since(r.started)
	r.loadAfter = loadAverage()

	md := r.markdown()
	fmt.Println()
	fmt.Print(md)
	if o.out != "" {
		if !filepath.IsAbs(o.out) {
			o.out = filepath.Join(root, o.out)
		}
		doc := "# Benchmark results\n\nWritten by `make bench` (bench/cmd/unitycrm-bench); " +
			"every number below was measured in the run it describes.\n\n" + md
		if err := os.WriteFile(o.out, []byte(doc), 0o644); err != nil {
			return err
		}
		say("wrote %s", o.out)
	}
	return nil
}

// runProfile runs the comparison through Vault with the plugin built from
// bench/cmd/unitycrm-bench-plugin, then profiles each mix alone.
func runProfile(ctx context.Context, o *options, root string) error {
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := vaulttest.BuildPlugin(root, "./bench/cmd/unitycrm-bench-plugin",
		filepath.Join(o.tmp, "plugins"))
	if err != nil {
		return err
	}
	p.Env = []string{pprofEnv + "=" + addr}
	prof := &profiler{dir: o.profileDir, pluginAddr: addr, seconds: o.profileSeconds,
		conc: targetLevel}

	// The in-process read too, for comparison with the plugin's profile.
	_, _, err = goTestBench(ctx, root, "test", "-run", "^$", "-bench", "^BenchmarkReadReuse$",
		"-benchmem", "-cpuprofile", filepath.Join(o.profileDir, "inproc-readreuse.pprof"),
		"-o", filepath.Join(o.tmp, "backend.test"), "./backend")
	if err != nil {
		return err
	}
	if err := prof.top(ctx, filepath.Join(o.profileDir, "inproc-readreuse.pprof")); err != nil {
		return err
	}

	if _, err := runLoad(ctx, o, p, prof); err != nil {
		return err
	}
	for _, f := range prof.files {
		say("profile: wrote %s", f)
	}
	return nil
}

func parseFlags() (*options, error) {
	o := &options{}
	var levels, phases string
	flag.StringVar(&o.vaultBin, "vault", os.Getenv("VAULT_BIN"),
		"vault binary (default $VAULT_BIN; scripts/vault/ensure.sh prints one)")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md",
		"also write the results here, relative to the checkout (by default only "+
			"when every phase runs); empty: don't")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (Vault logs, storage)")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.StringVar(&phases, "phases", "go,load,scale", "phases to run: go, load, scale")
	flag.StringVar(&levels, "levels", "1,16,64", "concurrency levels through Vault")
	flag.DurationVar(&o.duration, "duration", 4*time.Second,
		"time each mix runs per level (at most 1m)")
	flag.DurationVar(&o.window, "window", time.Second,
		"length of each alternating window of one mix")
	flag.DurationVar(&o.warm, "warm", 300*time.Millisecond, "warm-up of each mix per level")
	flag.StringVar(&o.logLevel, "log-level", "info", "log level of the dev Vault")
	flag.IntVar(&o.scaleCreds, "scale-creds", 10000, "credentials in the scale phase")
	flag.IntVar(&o.leasesPerCred, "leases-per-cred", 10, "reads (leases) per credential")
	flag.IntVar(&o.scaleConc, "scale-concurrency", 64, "requests at a time in the scale phase")
	flag.StringVar(&o.storageParent, "storage-parent", defaultStorageParent(),
		"where the scale phase's file storage gets its temporary directory "+
			"(default tmpfs /dev/shm when writable, so the VM's disk does not bound it)")
	flag.StringVar(&o.profileDir, "profile", "",
		"instead of the bench: profile Vault and a pprof build of the plugin into this directory")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 10, "length of each CPU profile")
	flag.Parse()
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })

	if o.vaultBin == "" {
		return nil, errors.New("no Vault binary: set VAULT_BIN or -vault " +
			"(VAULT_BIN=$(scripts/vault/ensure.sh))")
	}
	if _, err := os.Stat(o.vaultBin); err != nil {
		return nil, err
	}
	o.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "go", "load", "scale":
			o.phases[p] = true
		default:
			return nil, fmt.Errorf("unknown phase %q", p)
		}
	}
	if !outSet && len(o.phases) < 3 {
		o.out = ""
	}
	for _, s := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			return nil, fmt.Errorf("bad concurrency level %q (1 to 256)", s)
		}
		o.levels = append(o.levels, n)
	}
	switch {
	case o.duration <= 0 || o.duration > time.Minute:
		return nil, errors.New("-duration must be within (0, 1m]")
	case o.window <= 0 || o.window > o.duration:
		return nil, errors.New("-window must be within (0, -duration]")
	case o.warm < 0 || o.warm > 10*time.Second:
		return nil, errors.New("-warm must be within [0, 10s]")
	case o.scaleCreds < 1 || o.scaleCreds > 100_000:
		return nil, errors.New("-scale-creds must be within [1, 100000]")
	case o.leasesPerCred < 1 || o.leasesPerCred > 100:
		return nil, errors.New("-leases-per-cred must be within [1, 100]")
	case o.scaleConc < 1 || o.scaleConc > 256:
		return nil, errors.New("-scale-concurrency must be within [1, 256]")
	case o.profileSeconds < 1 || o.profileSeconds > 60:
		return nil, errors.New("-profile-seconds must be within [1, 60]")
	}
	return o, nil
}

// defaultStorageParent is /dev/shm when it is a writable directory, else
// the system's temporary directory.
func defaultStorageParent() string {
	const shm = "/dev/shm"
	if d, err := os.MkdirTemp(shm, ".unitycrm-bench-probe-"); err == nil {
		os.Remove(d)
		return shm
	}
	return os.TempDir()
}

// commandLine is how this run was started, as a person would type it.
func commandLine() string {
	args := strings.Join(os.Args[1:], " ")
	if os.Getenv("MAKELEVEL") != "" {
		if args == "" {
			return "make bench"
		}
		return "make bench BENCH_FLAGS='" + args + "'"
	}
	return strings.TrimSpace("go run ./bench/cmd/unitycrm-bench " + args)
}

// say reports progress on stderr; stdout carries the table.
func say(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"),
		fmt.Sprintf(format, a...))
}
