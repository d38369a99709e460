package vaulttest

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ChildWithExe returns the pid of a child of parent whose executable is
// exe (such as a Plugin's Path under a server's PID), or 0.
func ChildWithExe(parent int, exe string) int {
	for _, pid := range children(parent) {
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && got == exe {
			return pid
		}
	}
	return 0
}

// children returns the pids of the processes whose parent is pid, lowest
// first.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, err := statusField(child, "PPid")
		if err == nil && ppid == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	slices.Sort(out)
	return out
}

// RSS returns the resident memory (VmRSS) of pid in bytes.
func RSS(pid int) (int64, error) {
	v, err := statusField(pid, "VmRSS")
	if err != nil {
		return 0, err
	}
	kb, unit, _ := strings.Cut(v, " ")
	if strings.TrimSpace(unit) != "kB" {
		return 0, fmt.Errorf("unexpected VmRSS %q in /proc/%d/status", v, pid)
	}
	n, err := strconv.ParseInt(kb, 10, 64)
	return n * 1024, err
}

// statusField returns the value of a field of /proc/<pid>/status, its
// spaces collapsed.
func statusField(pid int, field string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			return strings.Join(strings.Fields(v), " "), nil
		}
	}
	return "", fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
