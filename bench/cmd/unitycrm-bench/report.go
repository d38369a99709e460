package main

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/version"
)

// machine describes where the bench ran.
type machine struct {
	commit string // the checkout measured
	cpus   int
	model  string
	memory string
	kernel string
	goVer  string
	vault  string
}

func describeMachine(root, vaultBin string) machine {
	m := machine{cpus: runtime.NumCPU(), goVer: runtime.Version(), model: "unknown",
		memory: "unknown", commit: checkoutCommit(root)}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok &&
				strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb, err := meminfo("MemTotal:"); err == nil {
		m.memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(vaultBin, "version").Output(); err == nil {
		// "Vault v1.21.0, built <date>": the date of a local build says
		// nothing about the release.
		first := strings.SplitN(string(out), "\n", 2)[0]
		m.vault, _, _ = strings.Cut(strings.TrimSpace(first), ", built")
	}
	return m
}

// checkoutCommit names the commit of the checkout at root, marked when
// the code the bench builds differs from it; read-only git commands.
func checkoutCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown commit"
	}
	commit := "commit " + strings.TrimSpace(string(out))
	dirty, err := exec.Command("git", "-C", root, "status", "--porcelain", "--",
		"backend", "cmd", "internal", "go.mod", "go.sum").Output()
	if err == nil && len(strings.TrimSpace(string(dirty))) > 0 {
		commit += " with uncommitted changes"
	}
	return commit
}

func meminfo(field string) (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			var kb int64
			_, err := fmt.Sscan(rest, &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/meminfo", field)
}

// report is everything one run measured.
type report struct {
	machine  machine
	command  string
	started  time.Time
	took     time.Duration
	opts     *options
	goBench  *goBenchResult
	load     *loadResult
	scale    *scaleResult
	comments []string
	// The machine's 1-minute load average when the run started and ended:
	// other work shares its CPUs.
	loadBefore, loadAfter string
}

// loadAverage is the 1-minute load average from /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// Targets of issue 6, at concurrency 16.
const (
	targetLevel       = 16
	targetThroughput  = 0.2
	targetP99         = 3.0
	targetPeriodic    = time.Second
	targetPeriodicStr = "< 1 s"
)

// markdown renders the report as one table with the machine and command
// above it.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	row := func(measure, result, target string) {
		w("| %s | %s | %s |\n", measure, result, target)
	}

	m := r.machine
	w("Measured by `%s` at %s on %s (%d CPUs, %s RAM, %s), %s, %s, plugin %s; "+
		"run started %s and took %s; 1-minute load average %s at the start, %s at "+
		"the end (other work on the machine shares its CPUs: the ratios, measured "+
		"side by side, mean more than the absolute numbers).\n\n",
		r.command, m.commit, m.model, m.cpus, m.memory, m.kernel, m.goVer, m.vault,
		version.Version, r.started.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second),
		r.loadBefore, r.loadAfter)

	row("measure", "result", "target")
	row("---", "---", "---")

	if g := r.goBench; g != nil {
		row("**In-process** (`go test -bench . -benchmem ./backend`)", "", "")
		for _, x := range g.all {
			note := ""
			if x.name == periodicBench {
				note = fmt.Sprintf(" (steady state: %d calls after the first, nothing "+
					"left to sweep)", x.iterations-1)
			}
			row("`"+x.name+"`"+note, fmt.Sprintf("%s/op, %s B/op, %s allocs/op",
				fmtDur(time.Duration(x.nsPerOp)), fmtInt(int64(x.bytesPerOp)),
				fmtInt(int64(x.allocsPerOp))), "")
		}
		if len(g.firstSweep) > 0 {
			var ds []time.Duration
			for _, x := range g.firstSweep {
				ds = append(ds, time.Duration(x.nsPerOp))
			}
			slices.Sort(ds)
			worst := ds[len(ds)-1]
			row(fmt.Sprintf("`%s`, first call (`-benchtime 1x`, %d runs): sweeps "+
				"10,000 tokens expired an hour ago, 100,000 leases on live ones",
				periodicBench, len(ds)),
				fmt.Sprintf("median %s, worst %s", fmtDur(ds[len(ds)/2]), fmtDur(worst)),
				verdict(targetPeriodicStr, worst < targetPeriodic))
		}
	}

	if l := r.load; l != nil {
		row(fmt.Sprintf("**Through Vault** (`vault server -dev`, inmem storage, log level "+
			"%s): `GET unitycrm/creds/<name>` (%d B answer) and KV v1 `GET kv/%s` "+
			"(%d B), %v of each per level in turns of %v windows; *one credential*: "+
			"every request reads `creds/%s`; *%d credentials*: each worker reads one of %d",
			r.opts.logLevel, l.credsBytes, credName, l.kvBytes, r.opts.duration,
			r.opts.window, credName, spreadCreds, spreadCreds), "", "")
		for _, lv := range l.levels {
			kv := lv.mixes[mixKV]
			for _, m := range []mix{mixCreds, mixSpread} {
				cr := lv.mixes[m]
				thr := ratio(cr.rate(), kv.rate())
				p99 := ratio(float64(cr.percentile(0.99)), float64(kv.percentile(0.99)))
				target := ""
				if lv.conc == targetLevel && m == mixCreds {
					target = verdict(fmt.Sprintf("throughput ≥ %.1f", targetThroughput),
						thr >= targetThroughput) + "; " +
						verdict(fmt.Sprintf("p99 ≤ %.0f×", targetP99), p99 <= targetP99)
				}
				what := "one credential"
				if m == mixSpread {
					what = fmt.Sprintf("%d credentials", spreadCreds)
				}
				row(fmt.Sprintf("concurrency %d, %s: creds / KV", lv.conc, what),
					fmt.Sprintf("throughput **%.2f**, p99 **%.1f×**<br>creds %s/s, p50 %s, "+
						"p99 %s<br>KV %s/s, p50 %s, p99 %s%s",
						thr, p99,
						fmtInt(int64(cr.rate())), fmtDur(cr.percentile(0.5)),
						fmtDur(cr.percentile(0.99)),
						fmtInt(int64(kv.rate())), fmtDur(kv.percentile(0.5)),
						fmtDur(kv.percentile(0.99)), errNote(cr, kv)),
					target)
			}
			row(fmt.Sprintf("concurrency %d: where a read's time goes (mean latency; "+
				"time inside the engine, as Vault's router timed it; CPU per read)", lv.conc),
				strings.Join([]string{
					"one credential: " + breakdown(lv.mixes[mixCreds], metricRouteCreds, true),
					fmt.Sprintf("%d credentials: ", spreadCreds) +
						breakdown(lv.mixes[mixSpread], metricRouteCreds, true),
					"KV: " + breakdown(kv, metricRouteKV, false),
				}, "<br>"), "")
		}
		row("leases created (creds reads; none revoked, mount TTL "+fmtTTL(l.leaseTTL)+")",
			fmt.Sprintf("%s (Vault lists %s)", fmtInt(int64(l.reads)),
				fmtInt(int64(l.leasesListed))), "")

		per := float64(l.tokenRequests) * 10000 / float64(max(l.reads, 1))
		minPer := float64(l.minRequests) * 10000 / float64(max(l.reads, 1))
		row("**Upstream economy**: token requests per 10,000 creds reads",
			fmt.Sprintf("**%.2f** (%d token requests for %s reads of %d credentials over "+
				"%s; the code exchange and the imports included)", per, l.tokenRequests,
				fmtInt(int64(l.reads)), l.credentials, l.runLength.Round(time.Second)),
			verdict(fmt.Sprintf("the minimum for the run's length, %.2f (%d: one token "+
				"per credential per %s, a token's hour less min_token_ttl; the exchange "+
				"or import brings the first)", minPer, l.minRequests, fmtTTL(l.reuseSpan)),
				l.tokenRequests <= l.minRequests))
	}

	if s := r.scale; s != nil {
		row(fmt.Sprintf("**Scale** (`vault server` with file storage in %s, log level "+
			"debug; %d requests at a time)", storageLabel(s.storageDir), s.conc), "", "")
		row(fmt.Sprintf("import %s credentials (`creds/<name> refresh_token=...`)",
			fmtInt(int64(s.creds))),
			fmt.Sprintf("%s (%s/s), %s token requests%s",
				s.createWall.Round(time.Millisecond),
				fmtInt(int64(float64(s.creds)/s.createWall.Seconds())),
				fmtInt(int64(s.createRequests)), errCount(s.createErrs, s.firstErr)),
			"1 token request each (the import proves the token)")
		row(fmt.Sprintf("%s reads spread over them (%d leases each)", fmtInt(int64(s.reads)),
			s.reads/max(s.creds, 1)),
			fmt.Sprintf("%s (%s/s), %s token requests%s",
				s.readWall.Round(time.Millisecond),
				fmtInt(int64(float64(s.reads)/s.readWall.Seconds())),
				fmtInt(int64(s.readRequests)), errCount(s.readErrs, s.firstErr)),
			"0 token requests")
		var total int
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.mountEntries)) {
			total += s.mountEntries[k]
			parts = append(parts, fmt.Sprintf("%s %s", k, fmtInt(int64(s.mountEntries[k]))))
		}
		row("storage entries per credential",
			fmt.Sprintf("engine: %.2f (%s in all: %s)<br>Vault's leases: %.2f (%s)",
				float64(total)/float64(s.creds), fmtInt(int64(total)), strings.Join(parts, ", "),
				float64(s.leaseEntries)/float64(s.creds), fmtInt(int64(s.leaseEntries))), "")
		row("plugin resident memory (VmRSS)",
			fmt.Sprintf("%s configured → %s with the credentials → %s with the leases",
				fmtMiB(s.pluginRSS[0]), fmtMiB(s.pluginRSS[1]), fmtMiB(s.pluginRSS[2])), "")
		row("Vault resident memory (VmRSS)",
			fmt.Sprintf("%s → %s → %s", fmtMiB(s.vaultRSS[0]), fmtMiB(s.vaultRSS[1]),
				fmtMiB(s.vaultRSS[2])), "")
		res := fmt.Sprintf("**%s** (Vault's `%s`, slowest in a 10 s interval)",
			fmtDur(s.periodic), s.periodicMetric)
		if len(s.periodicLog) > 0 {
			res += "<br>plugin log: `" + s.periodicLog[len(s.periodicLog)-1] + "`"
		}
		row(fmt.Sprintf("periodic function at %s credentials and %s leases, through "+
			"Vault (its rollback of the mount, run every minute)",
			fmtInt(int64(s.creds)), fmtInt(int64(s.leaseEntries))),
			res, verdict(targetPeriodicStr, s.periodic < targetPeriodic))
	}

	for _, c := range r.comments {
		w("\n%s\n", c)
	}
	return b.String()
}

// breakdown says where the time of one mix's reads went: end to end, in
// the engine's route (the plugin, its storage and system-view calls to
// Vault), in lease registration, and the CPU each process used per read.
func breakdown(st *stats, route string, leased bool) string {
	out := "mean " + fmtDur(st.mean())
	if ms, n := st.vault.mean(route); n > 0 {
		out += ", in the engine " + fmtDur(time.Duration(ms*float64(time.Millisecond)))
	}
	if ms, n := st.vault.mean(metricRegister); leased && n > 0 {
		out += ", lease registration " + fmtDur(time.Duration(ms*float64(time.Millisecond)))
	}
	out += "; CPU: Vault " + fmtDur(st.perRequest(st.vaultCPU))
	if leased {
		out += ", plugin " + fmtDur(st.perRequest(st.pluginCPU))
	}
	return out + ", load generator " + fmtDur(st.perRequest(st.benchCPU))
}

func verdict(target string, met bool) string {
	if met {
		return target + ": met"
	}
	return target + ": **missed**"
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func errNote(cr, kv *stats) string {
	if cr.errs == 0 && kv.errs == 0 {
		return ""
	}
	return fmt.Sprintf("<br>**errors**: creds %d, KV %d; first: %s", cr.errs, kv.errs,
		firstNonEmpty(cr.firstErr, kv.firstErr))
}

func errCount(n int, first string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", **%d errors** (first: %s)", n, first)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// fmtDur shows a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + " µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + " ms"
	}
	return sig3(d.Seconds()) + " s"
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// fmtTTL shows 30m0s as 30m and 1h0m0s as 1h.
func fmtTTL(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fmtInt groups thousands with commas.
func fmtInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func fmtMiB(b int64) string {
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// storageLabel names where the scale phase's storage lived.
func storageLabel(dir string) string {
	if dir == "/dev/shm" {
		return "`/dev/shm` (tmpfs)"
	}
	return "`" + dir + "`"
}
