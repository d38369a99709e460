package vaulttest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

func TestRSS(t *testing.T) {
	n, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n%1024 != 0 {
		t.Errorf("RSS = %d, want a positive number of KiB in bytes", n)
	}
}

func TestChildWithExe(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}

	if got := ChildWithExe(os.Getpid(), exe); got != cmd.Process.Pid {
		t.Errorf("ChildWithExe = %d, want %d", got, cmd.Process.Pid)
	}
	if got := ChildWithExe(os.Getpid(), "/nonexistent"); got != 0 {
		t.Errorf("ChildWithExe of another binary = %d, want 0", got)
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port == "" || port == "0" {
		t.Errorf("FreePort = %q", port)
	}
}
