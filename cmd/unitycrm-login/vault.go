package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// stateSlack is how much longer than the wait the engine keeps the state,
// so a redirect arriving at the last moment can still be written.
const stateSlack = time.Minute

// newVaultClient builds a client the way the vault CLI does: from the
// VAULT_* environment, with the token from VAULT_TOKEN or else the file
// the CLI's default token helper keeps.
func newVaultClient() (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client configuration: %w", cfg.Error)
	}

	// A grant code works once: a retried write could only fail, and would
	// hide the first answer.
	cfg.MaxRetries = 0

	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	if c.Token() != "" {
		return c, nil
	}

	tok, err := tokenFromHelperFile()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		c.SetToken(tok)
	}
	return c, nil
}

// tokenFromHelperFile reads ~/.vault-token, where `vault login` leaves the
// token. A missing file is no token.
func tokenFromHelperFile() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", nil
	}

	raw, err := os.ReadFile(filepath.Join(home, ".vault-token"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read vault token file: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// authRequest is what auth-code-url answered. state is a secret.
type authRequest struct {
	url   string
	state string
}

// requestAuthURL asks the engine for a grant-code URL. An empty
// redirectURI means the configured one.
func requestAuthURL(ctx context.Context, c *api.Client, o options,
	redirectURI string) (*authRequest, []string, error) {
	data := map[string]interface{}{
		"name": o.name,
		"ttl":  stateTTL(o.timeout),
	}
	if redirectURI != "" {
		data["redirect_uri"] = redirectURI
	}
	if o.scopes != "" {
		data["scopes"] = o.scopes
	}

	path := o.mount + "/auth-code-url"
	s, err := c.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return nil, nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if s == nil {
		return nil, nil, fmt.Errorf("%s answered nothing: is %s/ the Unity "+
			"CRM secrets engine?", path, o.mount)
	}
	u, _ := s.Data["url"].(string)
	st, _ := s.Data["state"].(string)
	if u == "" || st == "" {
		return nil, nil, fmt.Errorf("%s answered without url or state: is "+
			"%s/ the Unity CRM secrets engine?", path, o.mount)
	}
	return &authRequest{url: u, state: st}, s.Warnings, nil
}

// stateTTL is the state life to ask for, in whole seconds.
func stateTTL(wait time.Duration) string {
	secs := math.Ceil((wait + stateSlack).Seconds())
	return fmt.Sprintf("%.0fs", math.Min(secs, time.Hour.Seconds()))
}

// storeCredential writes the redirected URL to creds/<name>. callbackURL
// holds the grant code: it goes to Vault and nowhere else.
func storeCredential(ctx context.Context, c *api.Client, o options,
	callbackURL string) (*api.Secret, error) {
	path := o.mount + "/creds/" + o.name
	s, err := c.Logical().WriteWithContext(ctx, path, map[string]interface{}{
		"callback_url": callbackURL,
	})
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if s == nil {
		return nil, fmt.Errorf("%s answered nothing: is %s/ the Unity CRM "+
			"secrets engine?", path, o.mount)
	}
	return s, nil
}

// vaultMessage is the part of a Vault error fit for a browser page: the
// errors Vault listed, or a pointer to the terminal.
func vaultMessage(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) && len(re.Errors) > 0 {
		return strings.Join(re.Errors, "; ")
	}
	return "see the terminal for the error"
}
