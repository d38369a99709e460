//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/vaulttest"
)

// logTail returns the last n lines of v's log, framed for output.
func logTail(v *vaulttest.Process, n int) string {
	if v == nil {
		return ""
	}
	lines, err := v.LogTail(n)
	if err != nil {
		return fmt.Sprintf("(no vault log: %v)\n", err)
	}
	return fmt.Sprintf("--- last %d lines of %s ---\n%s\n--- end of vault log ---\n",
		len(lines), v.LogPath, strings.Join(lines, "\n"))
}

// showLogOnFailure prints the tail of v's log if the test fails.
func showLogOnFailure(t *testing.T, v *vaulttest.Process) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("\n" + logTail(v, 60))
		}
	})
}

// newClient returns an API client of the server at addr using token, its
// requests bounded to a minute.
func newClient(addr, token string) (*api.Client, error) {
	c, err := vaulttest.NewClient(addr, token, nil)
	if err != nil {
		return nil, err
	}
	c.SetClientTimeout(60 * time.Second)
	return c, nil
}
