package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
)

const secretAccessTokenType = "access_token"

func secretAccessToken(b *backend) *framework.Secret {
	return &framework.Secret{
		Type: secretAccessTokenType,
		Fields: map[string]*framework.FieldSchema{
			"access_token": {
				Type:        framework.TypeString,
				Description: "The access token.",
			},
			"token_type": {
				Type:        framework.TypeString,
				Description: "Token type as the accounts server reported it.",
			},
			"authorization_header": {
				Type:        framework.TypeString,
				Description: `Value for the Authorization header: "Zoho-oauthtoken <token>".`,
			},
			"api_domain": {
				Type:        framework.TypeString,
				Description: "API host of the account's data center; call it, never a hard-coded one.",
			},
			"expires_at": {
				Type:        framework.TypeString,
				Description: "When the token stops working (RFC 3339).",
			},
			"scopes": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Scopes granted.",
			},
		},
		Renew:  b.secretAccessTokenRenew,
		Revoke: b.secretAccessTokenRevoke,
	}
}

// issueAccessToken hands out the credential's current access token under a
// new lease, minting a fresh one first when the current one has less than
// min_token_ttl left.
func (b *backend) issueAccessToken(ctx context.Context, s logical.Storage, name string) (*logical.Response, error) {
	lock := b.credLock(name)
	lock.Lock()
	defer lock.Unlock()

	client, cfg, err := b.accountsClient(ctx, s)
	if err != nil {
		return nil, err
	}
	cred, err := getCred(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, notFound(name)
	}
	if cred.NeedsReauth {
		return nil, errNeedsReauth{name: name}
	}

	now := b.now()
	id := cred.CurrentTokenID
	tok, err := getToken(ctx, s, name, id)
	if err != nil {
		return nil, err
	}
	if tok == nil || !reusable(tok, cfg, now) {
		tok, id, err = b.mint(ctx, s, client, cfg, name, cred)
		if err != nil {
			return nil, err
		}
	}

	// Count the lease before handing the token out: revocation of the
	// last lease revokes the token upstream.
	tok.Leases++
	if err := putToken(ctx, s, name, id, tok); err != nil {
		return nil, err
	}

	ttl := leaseTTL(b.System(), tok, cfg, now)
	resp := b.Secret(secretAccessTokenType).Response(map[string]interface{}{
		"access_token":         tok.AccessToken,
		"token_type":           tok.TokenType,
		"authorization_header": "Zoho-oauthtoken " + tok.AccessToken,
		"api_domain":           tok.APIDomain,
		"expires_at":           tok.ExpiresAt.UTC().Format(time.RFC3339),
		"scopes":               nonNil(tok.Scopes),
	}, map[string]interface{}{
		"name":     name,
		"token_id": id,
	})
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = ttl
	b.Logger().Debug("access token leased", "credential", name, "token_id", id,
		"leases", tok.Leases, "ttl", ttl.String())
	return resp, nil
}

// reusable reports whether a token may be handed out again: it must have
// min_token_ttl left, and more than the lease safety margin.
func reusable(tok *tokenEntry, cfg *configEntry, now time.Time) bool {
	left := tok.ExpiresAt.Sub(now)
	return left >= cfg.MinTokenTTL && left > cfg.LeaseSafetyMargin+time.Second
}

// leaseTTL is the mount's TTL capped by the token's remaining life minus
// the safety margin: no lease outlives its token.
func leaseTTL(sys logical.SystemView, tok *tokenEntry, cfg *configEntry, now time.Time) time.Duration {
	ttl := sys.DefaultLeaseTTL()
	if max := sys.MaxLeaseTTL(); max > 0 && (ttl <= 0 || ttl > max) {
		ttl = max
	}
	left := tok.ExpiresAt.Sub(now) - cfg.LeaseSafetyMargin
	if ttl <= 0 || ttl > left {
		ttl = left
	}
	return ttl.Truncate(time.Second)
}

// mint asks the accounts server for a new access token and makes it the
// current one. Called with the credential's lock held.
func (b *backend) mint(ctx context.Context, s logical.Storage, client *accounts.Client,
	cfg *configEntry, name string, cred *credEntry,
) (*tokenEntry, string, error) {
	tokenURL, err := endpointAt(cfg.endpoints().TokenURL, cred.AccountsServer)
	if err != nil {
		return nil, "", err
	}

	t, err := client.Refresh(ctx, cred.RefreshToken, tokenURL)
	if err != nil {
		cred.LastError = accounts.KindOf(err).String()
		cred.LastErrorTime = b.now()
		if accounts.KindOf(err) == accounts.KindRevoked {
			cred.NeedsReauth = true
			b.Logger().Error("refresh token rejected, credential needs re-authorization",
				"credential", name, "error", err)
			err = errNeedsReauth{name: name}
		} else {
			b.Logger().Warn("mint access token failed", "credential", name, "error", err)
		}
		if perr := putCred(ctx, s, name, cred); perr != nil {
			b.Logger().Warn("record mint failure", "credential", name, "error", perr)
		}
		return nil, "", err
	}

	// A replaced token nobody holds a lease on is forgotten; it expires
	// within min_token_ttl anyway.
	if prev, _ := getToken(ctx, s, name, cred.CurrentTokenID); prev != nil && prev.Leases <= 0 {
		if err := s.Delete(ctx, tokenKey(name, cred.CurrentTokenID)); err != nil {
			return nil, "", fmt.Errorf("forget replaced access token: %w", err)
		}
	}

	tok := newTokenEntry(t)
	if tok.APIDomain == "" {
		tok.APIDomain = cred.APIDomain
	}
	if len(tok.Scopes) == 0 {
		tok.Scopes = cred.Scopes
	}
	id := tokenID(t.AccessToken)
	cred.CurrentTokenID = id
	cred.LastMint = t.IssuedAt
	cred.LastError = ""
	cred.LastErrorTime = time.Time{}
	if t.APIDomain != "" {
		cred.APIDomain = t.APIDomain
	}
	if err := putCred(ctx, s, name, cred); err != nil {
		return nil, "", err
	}
	b.Logger().Debug("access token minted", "credential", name, "token_id", id)
	return tok, id, nil
}

func (b *backend) secretAccessTokenRenew(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	name, id, msg := leaseIdentity(req)
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse(errNotConfigured.Error()), nil
	}

	lock := b.credLock(name)
	lock.RLock()
	tok, err := getToken(ctx, req.Storage, name, id)
	lock.RUnlock()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return logical.ErrorResponse("the access token of this lease was revoked; " +
			"read creds/" + name + " again"), nil
	}

	now := b.now()
	left := tok.ExpiresAt.Sub(now) - cfg.LeaseSafetyMargin
	if left <= 0 {
		return logical.ErrorResponse("the access token of this lease is about to " +
			"expire and cannot be renewed; read creds/" + name + " again"), nil
	}
	ttl := req.Secret.Increment
	if ttl <= 0 {
		ttl = b.System().DefaultLeaseTTL()
	}
	if ttl <= 0 || ttl > left {
		ttl = left
	}

	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl.Truncate(time.Second)
	resp.Secret.MaxTTL = resp.Secret.TTL
	return resp, nil
}

// secretAccessTokenRevoke ends one lease. When it was the last lease on its
// token, the token is revoked upstream and forgotten. A failed upstream
// call fails the revocation (so Vault retries it) only while the token
// could still be live.
func (b *backend) secretAccessTokenRevoke(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	name, id, msg := leaseIdentity(req)
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}

	lock := b.credLock(name)
	lock.Lock()
	defer lock.Unlock()

	tok, err := getToken(ctx, req.Storage, name, id)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		// Already revoked with its credential, or swept after expiry.
		return nil, nil
	}

	tok.Leases--
	if tok.Leases > 0 {
		return nil, putToken(ctx, req.Storage, name, id, tok)
	}

	now := b.now()
	if now.Before(tok.ExpiresAt) {
		if err := b.revokeAccessToken(ctx, req.Storage, name, tok); err != nil {
			b.Logger().Warn("revoke access token at accounts server", "credential", name,
				"token_id", id, "error", err)
			return nil, fmt.Errorf("revoke access token %s of credential %q at the "+
				"accounts server: %w", id, name, err)
		}
	}

	if err := req.Storage.Delete(ctx, tokenKey(name, id)); err != nil {
		return nil, fmt.Errorf("forget access token: %w", err)
	}
	cred, err := getCred(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if cred != nil && cred.CurrentTokenID == id {
		cred.CurrentTokenID = ""
		if err := putCred(ctx, req.Storage, name, cred); err != nil {
			return nil, err
		}
	}
	b.Logger().Debug("access token revoked", "credential", name, "token_id", id)
	return nil, nil
}

func (b *backend) revokeAccessToken(ctx context.Context, s logical.Storage, name string, tok *tokenEntry) error {
	client, cfg, err := b.accountsClient(ctx, s)
	if err != nil {
		return err
	}
	server := ""
	if cred, err := getCred(ctx, s, name); err == nil && cred != nil {
		server = cred.AccountsServer
	}
	return b.revokeUpstream(ctx, client, tok.AccessToken, cfg, server)
}

// leaseIdentity reads what a lease recorded about its token.
func leaseIdentity(req *logical.Request) (string, string, string) {
	if req.Secret == nil {
		return "", "", "request carries no lease"
	}
	name, _ := req.Secret.InternalData["name"].(string)
	id, _ := req.Secret.InternalData["token_id"].(string)
	if name == "" || id == "" {
		return "", "", "lease carries no credential name or token id"
	}
	return name, id, ""
}
