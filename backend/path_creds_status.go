package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathCredsStatus(b *backend) []*framework.Path {
	return []*framework.Path{
		statusPath(b, "creds/", "credential-status", ""),
		statusPath(b, selfPrefix, "self-client-credential-status", selfPrefix),
	}
}

// statusPath is the status view below prefix; idPrefix turns a name into
// a credential id.
func statusPath(b *backend, prefix, suffix, idPrefix string) *framework.Path {
	return &framework.Path{
		Pattern: prefix + framework.GenericNameRegex("name") + "/status$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: suffix,
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the credential.",
				Required:    true,
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Name",
				},
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: func(ctx context.Context, req *logical.Request,
					d *framework.FieldData,
				) (*logical.Response, error) {
					return b.pathCredsStatusRead(ctx, req, idPrefix+d.Get("name").(string))
				},
			},
		},
		HelpSynopsis:    pathCredsStatusHelpSyn,
		HelpDescription: pathCredsStatusHelpDesc,
	}
}

func (b *backend) pathCredsStatusRead(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse(errNotConfigured.Error()), nil
	}

	lock := b.credLock(name)
	lock.RLock()
	defer lock.RUnlock()

	cred, err := getCred(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, notFound(name)
	}

	now := b.now()
	lim := cfg.limits()
	inWindow := 0
	var windowResets time.Time
	for _, m := range cred.Mints {
		if now.Sub(m) < lim.window {
			if inWindow == 0 {
				windowResets = m.Add(lim.window)
			}
			inWindow++
		}
	}

	ids, err := req.Storage.List(ctx, tokenDirKey(name))
	if err != nil {
		return nil, fmt.Errorf("list access tokens: %w", err)
	}
	sort.Strings(ids)
	tokens := []map[string]interface{}{}
	for _, id := range ids {
		t, err := getToken(ctx, req.Storage, name, id)
		if err != nil {
			return nil, err
		}
		if t == nil || !now.Before(t.ExpiresAt) {
			continue
		}
		tokens = append(tokens, map[string]interface{}{
			"token_id":   id,
			"leases":     t.Leases,
			"issued_at":  timeOrEmpty(t.IssuedAt),
			"expires_at": timeOrEmpty(t.ExpiresAt),
			"current":    id == cred.CurrentTokenID,
		})
	}

	backoff := ""
	if now.Before(cred.BackoffUntil) {
		backoff = timeOrEmpty(cred.BackoffUntil)
	}
	return &logical.Response{Data: map[string]interface{}{
		"name":                 strings.TrimPrefix(name, selfPrefix),
		"source":               cred.Source,
		"created_at":           timeOrEmpty(cred.CreatedAt),
		"scopes":               nonNil(cred.Scopes),
		"api_domain":           cred.APIDomain,
		"accounts_server":      cred.AccountsServer,
		"needs_reauth":         cred.NeedsReauth,
		"last_mint":            timeOrEmpty(cred.LastMint),
		"mints_in_window":      inWindow,
		"mint_limit":           lim.mintLimit,
		"mint_window":          int64(lim.window.Seconds()),
		"window_resets_at":     timeOrEmpty(windowResets),
		"live_tokens":          tokens,
		"backoff_until":        backoff,
		"consecutive_failures": cred.Failures,
		"last_error":           cred.LastError,
		"last_error_time":      timeOrEmpty(cred.LastErrorTime),
	}}, nil
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

const pathCredsStatusHelpSyn = `Show a credential's quota and token state, without secrets.`

const pathCredsStatusHelpDesc = `
For operators: when the credential last minted an access token, how many
mints the current window holds against mint_limit, each live access token
(by id, never by value) with its lease count, whether the engine is backing
off and until when, the last error kind, and whether the credential needs
re-authorization.
`
