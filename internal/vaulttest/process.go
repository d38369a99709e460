// Package vaulttest starts and drives real Vault server processes on
// loopback, for the end-to-end tests (e2e) and the benchmarks
// (bench/cmd/unitycrm-bench): a server process with its log in a file,
// waits for it to answer and to be active, one-key init and unseal, the
// plugin built, registered with its version and enabled, and the memory of
// processes read from /proc.
package vaulttest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one vault server process, logging to a file that later runs
// (a Restart) append to.
type Process struct {
	Addr    string // http://127.0.0.1:<port>
	LogPath string

	bin  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // how the process ended, once done is closed
}

// Start starts bin with args as the server answering at addr, its output
// appended to logPath.
func Start(bin, addr, logPath string, args ...string) (*Process, error) {
	p := &Process{Addr: addr, LogPath: logPath, bin: bin, args: args}
	if err := p.Restart(); err != nil {
		return nil, err
	}
	return p, nil
}

// Restart starts the stopped server again with the same command and log.
// The environment loses the VAULT_* settings of whoever runs the caller, so
// the server reads only its flags and config.
func (p *Process) Restart() error {
	log, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "\n==> vaulttest: %s %s\n", p.bin, strings.Join(p.args, " "))

	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = serverEnv()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", p.bin, err)
	}

	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return nil
}

// serverEnv is the environment without VAULT_* settings.
func serverEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			out = append(out, kv)
		}
	}
	return out
}

// PID is the process id of the server's latest run.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the server's latest run has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitResponding polls sys/health until the server answers HTTP at all;
// sealed and uninitialized servers answer too.
func (p *Process) WaitResponding(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(p.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("vault exited before answering: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("vault did not answer at %s: %w", p.Addr, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop ends the server gracefully (SIGTERM), killing it after 30 seconds.
// It does nothing for a nil or never started Process, or one that ended.
func (p *Process) Stop() {
	if p == nil || p.cmd == nil || p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// LogTail returns the last n lines of the server's log.
func (p *Process) LogTail(n int) ([]string, error) {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
