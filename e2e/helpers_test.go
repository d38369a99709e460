//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// testCtx returns a context that ends with the test, at most after two
// minutes.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// authorize does what an operator does for a new credential: asks for the
// grant-code URL, has the CRM user approve it at the emulator, and writes
// the URL the browser landed on to creds/<name>. It returns the write's
// answer.
func authorize(t *testing.T, c *api.Client, mount string, emu *accountstest.Server,
	name string,
) map[string]any {
	t.Helper()
	ctx := testCtx(t)

	grant, err := c.Logical().WriteWithContext(ctx, mount+"/auth-code-url",
		map[string]any{"name": name})
	if err != nil {
		t.Fatalf("write %s/auth-code-url: %v", mount, err)
	}
	authURL, _ := grant.Data["url"].(string)
	state, _ := grant.Data["state"].(string)
	if authURL == "" || state == "" {
		t.Fatalf("auth-code-url answered %v; want url and state", grant.Data)
	}
	if !strings.Contains(authURL, "access_type=offline") ||
		!strings.Contains(authURL, "prompt=consent") {
		t.Errorf("auth URL %q lacks access_type=offline or prompt=consent", authURL)
	}

	callback, err := emu.Approve(authURL, "")
	if err != nil {
		t.Fatalf("approve at the emulator: %v", err)
	}

	before := emu.Counts()
	stored, err := c.Logical().WriteWithContext(ctx, mount+"/creds/"+name,
		map[string]any{"callback_url": callback})
	if err != nil {
		t.Fatalf("write %s/creds/%s callback_url=...: %v", mount, name, err)
	}
	if got := emu.Counts().CodeExchanges - before.CodeExchanges; got != 1 {
		t.Errorf("code exchanges during creds write = %d, want 1", got)
	}
	if stored == nil || stored.Data["name"] != name {
		t.Fatalf("creds write answered %+v; want name %q", stored, name)
	}
	if _, ok := stored.Data["refresh_token"]; ok {
		t.Errorf("creds write returned the refresh token")
	}
	return stored.Data
}

// lease is what a read of creds/<name> gave an application.
type lease struct {
	ID          string
	Duration    time.Duration
	Renewable   bool
	AccessToken string
	Header      string
	APIDomain   string
	ExpiresAt   time.Time
	Scopes      []any
	ReadAt      time.Time
}

// readCreds reads creds/<name> and checks the fields every answer carries.
func readCreds(t *testing.T, c *api.Client, mount, name string) lease {
	t.Helper()
	readAt := time.Now()
	s, err := c.Logical().ReadWithContext(testCtx(t), mount+"/creds/"+name)
	if err != nil {
		t.Fatalf("read %s/creds/%s: %v", mount, name, err)
	}
	if s == nil {
		t.Fatalf("read %s/creds/%s: no answer", mount, name)
	}

	l := lease{
		ID:        s.LeaseID,
		Duration:  time.Duration(s.LeaseDuration) * time.Second,
		Renewable: s.Renewable,
		ReadAt:    readAt,
	}
	l.AccessToken, _ = s.Data["access_token"].(string)
	l.Header, _ = s.Data["authorization_header"].(string)
	l.APIDomain, _ = s.Data["api_domain"].(string)
	l.Scopes, _ = s.Data["scopes"].([]any)
	exp, _ := s.Data["expires_at"].(string)
	l.ExpiresAt, err = time.Parse(time.RFC3339, exp)
	if err != nil {
		t.Errorf("expires_at %q is not RFC 3339: %v", exp, err)
	}

	prefix := mount + "/creds/" + name + "/"
	switch {
	case !strings.HasPrefix(l.ID, prefix):
		t.Errorf("lease_id = %q, want one under %s", l.ID, prefix)
	case l.Duration <= 0:
		t.Errorf("lease_duration = %v, want > 0", l.Duration)
	case l.AccessToken == "":
		t.Errorf("access_token is empty")
	case l.Header != "Zoho-oauthtoken "+l.AccessToken:
		t.Errorf("authorization_header is not \"Zoho-oauthtoken <access_token>\"")
	case l.APIDomain == "":
		t.Errorf("api_domain is empty")
	case len(l.Scopes) == 0:
		t.Errorf("scopes is empty")
	}
	if _, ok := s.Data["refresh_token"]; ok {
		t.Errorf("read returned the refresh token")
	}
	checkLeaseWithinToken(t, l.Duration, readAt, l.ExpiresAt)
	return l
}

// checkLeaseWithinToken fails when a lease of ttl granted at from would
// outlive the token it holds.
func checkLeaseWithinToken(t *testing.T, ttl time.Duration, from, expiresAt time.Time) {
	t.Helper()
	// expires_at has whole seconds; allow one for the rounding.
	if end := from.Add(ttl); end.After(expiresAt.Add(time.Second)) {
		t.Errorf("lease of %v ends at %s, after its token expires at %s",
			ttl, end.UTC().Format(time.RFC3339), expiresAt.UTC().Format(time.RFC3339))
	}
}

// crmStatus calls the CRM API at apiDomain with the Authorization header an
// application got from Vault, and returns the HTTP status.
func crmStatus(t *testing.T, apiDomain, header string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet,
		apiDomain+"/crm/v2/org", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("CRM API call: %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// wantCRM checks the CRM API's answer to the token of l, and whether the
// emulator holds it live.
func wantCRM(t *testing.T, emu *accountstest.Server, l lease, status int) {
	t.Helper()
	if got := crmStatus(t, l.APIDomain, l.Header); got != status {
		t.Errorf("CRM API answered %d for the token of lease %s, want %d", got, l.ID, status)
	}
	live := status == http.StatusOK
	if got := emu.IsLive(l.AccessToken); got != live {
		t.Errorf("emulator says the token of lease %s is live=%v, want %v", l.ID, got, live)
	}
}

// revokeLease revokes one lease through sys/leases/revoke.
func revokeLease(t *testing.T, c *api.Client, id string) {
	t.Helper()
	if err := c.Sys().RevokeWithContext(testCtx(t), id); err != nil {
		t.Fatalf("sys/leases/revoke %s: %v", id, err)
	}
}

// statusOf returns the HTTP status of a failed Vault request, or 0.
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// countsDelta is what the emulator served between two snapshots.
func countsDelta(before, after accountstest.Counts) string {
	return fmt.Sprintf("token requests %d, exchanges %d, refreshes %d, revocations %d",
		after.TokenRequests-before.TokenRequests, after.CodeExchanges-before.CodeExchanges,
		after.Refreshes-before.Refreshes, after.Revocations-before.Revocations)
}
