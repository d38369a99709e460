//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultProcess is one run of a vault server, logging to a file that later
// runs (a restart) append to.
type vaultProcess struct {
	bin     string
	args    []string
	addr    string // http://127.0.0.1:<port>
	logPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // how the process ended, once done is closed
}

// startVault starts bin with args, its output appended to logPath.
func startVault(bin, logPath string, args ...string) (*vaultProcess, error) {
	v := &vaultProcess{bin: bin, args: args, logPath: logPath}
	if err := v.start(); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *vaultProcess) start() error {
	log, err := os.OpenFile(v.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "\n==> e2e: %s %s\n", v.bin, strings.Join(v.args, " "))

	cmd := exec.Command(v.bin, v.args...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = vaultEnv()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", v.bin, err)
	}

	v.cmd = cmd
	v.done = make(chan struct{})
	go func() {
		v.err = cmd.Wait()
		log.Close()
		close(v.done)
	}()
	return nil
}

// vaultEnv is the environment without VAULT_* settings of whoever runs the
// tests, so the server reads only its flags and config.
func vaultEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			out = append(out, kv)
		}
	}
	return out
}

// waitResponding polls sys/health until the server answers HTTP at all
// (sealed and uninitialized servers answer too).
func (v *vaultProcess) waitResponding(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(v.addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-v.done:
			return fmt.Errorf("vault exited before answering: %v", v.err)
		case <-ctx.Done():
			return fmt.Errorf("vault did not answer at %s: %w", v.addr, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop ends the server gracefully (SIGTERM), killing it after 30 seconds.
func (v *vaultProcess) stop() {
	if v.cmd == nil || v.cmd.Process == nil {
		return
	}
	select {
	case <-v.done:
		return
	default:
	}
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
	case <-time.After(30 * time.Second):
		v.cmd.Process.Kill()
		<-v.done
	}
}

// logTail returns the last n lines of the server's log, framed for output.
func (v *vaultProcess) logTail(n int) string {
	if v == nil {
		return ""
	}
	b, err := os.ReadFile(v.logPath)
	if err != nil {
		return fmt.Sprintf("(no vault log: %v)\n", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("--- last %d lines of %s ---\n%s\n--- end of vault log ---\n",
		len(lines), v.logPath, bytes.Join(lines, []byte("\n")))
}

// showLogOnFailure prints the tail of v's log if the test fails.
func showLogOnFailure(t *testing.T, v *vaultProcess) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("\n" + v.logTail(60))
		}
	})
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// newClient returns an API client of the server at addr using token.
func newClient(addr, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.Timeout = 60 * time.Second
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

// waitActive polls until the server is initialized, unsealed and active.
func waitActive(ctx context.Context, c *api.Client) error {
	for {
		h, err := c.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not active")
			}
			return fmt.Errorf("vault did not become active: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
