package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// goBench is one line of `go test -bench -benchmem` output.
type goBench struct {
	name        string
	iterations  int64
	nsPerOp     float64
	bytesPerOp  float64
	allocsPerOp float64
}

// goBenchResult is the in-process benchmarks of the backend package.
type goBenchResult struct {
	// Every benchmark with go test's own iteration count.
	all []goBench
	// BenchmarkPeriodic10kCredentials with one iteration, several times:
	// the first call sweeps the hour of expired tokens; later calls of
	// the default run find nothing left to sweep.
	firstSweep []goBench
	commands   []string
}

const periodicBench = "BenchmarkPeriodic10kCredentials"

// runGoBench runs the backend package's benchmarks in-process.
func runGoBench(ctx context.Context, root string, extra ...string) (*goBenchResult, error) {
	res := &goBenchResult{}
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1"},
		extra...)
	all, cmd, err := goTestBench(ctx, root, append(args, "./backend")...)
	if err != nil {
		return nil, err
	}
	res.all = all
	res.commands = append(res.commands, cmd)

	first, cmd, err := goTestBench(ctx, root, "test", "-run", "^$", "-bench",
		"^"+periodicBench+"$", "-benchmem", "-benchtime", "1x", "-count", "3", "./backend")
	if err != nil {
		return nil, err
	}
	res.firstSweep = first
	res.commands = append(res.commands, cmd)
	return res, nil
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op` +
	`(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

// goTestBench runs go with args in root and parses its benchmark lines.
func goTestBench(ctx context.Context, root string, args ...string) ([]goBench, string, error) {
	line := "go " + strings.Join(args, " ")
	say("go: %s", line)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, line, fmt.Errorf("%s: %w\n%s", line, err, out)
	}

	var res []goBench
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		b := goBench{name: m[1]}
		b.iterations, _ = strconv.ParseInt(m[2], 10, 64)
		b.nsPerOp, _ = strconv.ParseFloat(m[3], 64)
		b.bytesPerOp, _ = strconv.ParseFloat(m[4], 64)
		b.allocsPerOp, _ = strconv.ParseFloat(m[5], 64)
		res = append(res, b)
	}
	if len(res) == 0 {
		return nil, line, fmt.Errorf("%s printed no benchmark results:\n%s", line, out)
	}
	return res, line, nil
}
