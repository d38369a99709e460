package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

// logTail returns the last n lines of v's log.
func logTail(v *vaulttest.Process, n int) string {
	lines, err := v.LogTail(n)
	if err != nil {
		return fmt.Sprintf("(no vault log: %v)", err)
	}
	return strings.Join(lines, "\n")
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	port, err := vaulttest.FreePort()
	return "127.0.0.1:" + port, err
}

// moduleRoot finds the directory of the main module's go.mod, from the
// working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the " + modulePath + " checkout")
		}
		dir = parent
	}
}

// cpuTime is the user plus system CPU time pid has used, from
// /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	// After the name: state(0) ppid(1) ... utime(11) stime(12), in clock
	// ticks; Linux reports them at 100 per second (USER_HZ).
	fields := strings.Fields(s[i+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
