package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
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

// errCredentialChanged is a credential overwritten or deleted while a mint
// for it was in flight.
var errCredentialChanged = errors.New("the credential changed during the read")

// issueAccessToken hands out the credential's current access token under a
// new lease, minting a fresh one first when the current one has less than
// min_token_ttl left. Concurrent reads of one credential share a single
// upstream request; the credential's lock is never held across one, so
// reads of other credentials don't wait on it.
func (b *backend) issueAccessToken(ctx context.Context, s logical.Storage, name string) (*logical.Response, error) {
	_, cfg, err := b.accountsClient(ctx, s)
	if err != nil {
		return nil, err
	}

	for attempt := 0; attempt < 3; attempt++ {
		resp, err := b.leaseCurrent(ctx, s, cfg, name, leaseReusable)
		if err != nil || resp != nil {
			return resp, err
		}

		_, err, _ = b.flights.Do(name, func() (interface{}, error) {
			// The flight outlives a caller that gives up; the client's
			// timeout still bounds it.
			return nil, b.refreshCurrent(context.WithoutCancel(ctx), s, name)
		})
		var qe *quotaError
		switch {
		case errors.As(err, &qe):
			// Past the quota, a still valid token beats an error.
			resp, lerr := b.leaseCurrent(ctx, s, cfg, name, leaseShort)
			if lerr != nil || resp != nil {
				return resp, lerr
			}
			return nil, qe.coded()
		case errors.Is(err, errCredentialChanged):
			continue
		case err != nil:
			return nil, err
		}

		// A token just minted is leased whatever its life, even one the
		// provider made shorter than min_token_ttl.
		resp, err = b.leaseCurrent(ctx, s, cfg, name, leaseFresh)
		if err != nil || resp != nil {
			return resp, err
		}
	}
	return nil, logical.CodedError(http.StatusServiceUnavailable,
		credPath(name)+" changed repeatedly during the read; retry")
}

// leaseMode says which current token leaseCurrent may hand out.
type leaseMode int

const (
	// leaseReusable: only one with at least min_token_ttl left.
	leaseReusable leaseMode = iota
	// leaseFresh: one just minted, with more than the safety margin left.
	leaseFresh
	// leaseShort: any with more than the safety margin left, when no new
	// one can be minted; the answer warns of the short lease.
	leaseShort
)

// leaseCurrent leases the current token when mode allows handing it out.
// It returns nil, nil when a new token is needed.
func (b *backend) leaseCurrent(ctx context.Context, s logical.Storage, cfg *configEntry,
	name string, mode leaseMode,
) (*logical.Response, error) {
	// Shared: reads of one credential run side by side; see lease_count.go.
	lock := b.credLock(name)
	lock.RLock()
	defer lock.RUnlock()

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
	if err != nil || tok == nil {
		return nil, err
	}
	usable := tok.ExpiresAt.Sub(now) > cfg.LeaseSafetyMargin+time.Second
	if !usable || (mode == leaseReusable && !reusable(tok, cfg, now)) {
		return nil, nil
	}

	// Count the lease before handing the token out: revocation of the
	// last lease revokes the token upstream.
	if err := b.countLease(ctx, s, name, id, 1); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		// The caller is gone: Vault will register no lease for this read,
		// so none may stay counted. TODO(phantom lease counts): a caller
		// that gives up after this check, before Vault registers the
		// lease, still leaves a count that keeps the token live upstream
		// until it expires; per-lease records with their own expiry would
		// close that window.
		if uerr := b.countLease(ctx, s, name, id, -1); uerr != nil {
			b.Logger().Warn("uncount lease of abandoned read", "credential", name,
				"token_id", id, "error", uerr)
		}
		return nil, err
	}

	ttl := leaseTTL(b.ttls.get(b.System()), tok, cfg, now)
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
	if mode == leaseShort {
		resp.AddWarning("no new access token could be minted now (quota spent or " +
			"the accounts server failing; see creds/<name>/status): this one has " +
			"less than min_token_ttl left, so the lease is short")
	}
	b.Logger().Debug("access token leased", "credential", name, "token_id", id,
		"ttl", ttl.String())
	return resp, nil
}

// reusable reports whether a token may be handed out again: it must have
// min_token_ttl left, and more than the lease safety margin.
func reusable(tok *tokenEntry, cfg *configEntry, now time.Time) bool {
	left := tok.ExpiresAt.Sub(now)
	return left >= cfg.MinTokenTTL && left > cfg.LeaseSafetyMargin+time.Second
}

// mountTTLs are the mount's default and maximum lease TTLs.
type mountTTLs struct{ def, max time.Duration }

// ttlCache holds the mount's TTLs for a second: a tune reaches reads within
// that, and reads skip two round trips to Vault each.
type ttlCache struct {
	mu   sync.Mutex
	at   time.Time
	ttls mountTTLs
}

const ttlCacheFor = time.Second

func (c *ttlCache) get(sys logical.SystemView) mountTTLs {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > ttlCacheFor {
		c.ttls = mountTTLs{def: sys.DefaultLeaseTTL(), max: sys.MaxLeaseTTL()}
		c.at = time.Now()
	}
	return c.ttls
}

// leaseTTL is the mount's TTL capped by the token's remaining life minus
// the safety margin: no lease outlives its token.
func leaseTTL(m mountTTLs, tok *tokenEntry, cfg *configEntry, now time.Time) time.Duration {
	ttl := m.def
	if max := m.max; max > 0 && (ttl <= 0 || ttl > max) {
		ttl = max
	}
	left := tok.ExpiresAt.Sub(now) - cfg.LeaseSafetyMargin
	if ttl <= 0 || ttl > left {
		ttl = left
	}
	return ttl.Truncate(time.Second)
}

// refreshCurrent mints a new current token for name, unless another read
// did so meanwhile. The quota guard decides before anything is sent.
func (b *backend) refreshCurrent(ctx context.Context, s logical.Storage, name string) error {
	client, cfg, err := b.accountsClient(ctx, s)
	if err != nil {
		return err
	}
	lim := cfg.limits()

	// Under the lock: check again, ask the guard, and record the attempt
	// so that it counts against the quota whatever happens next.
	lock := b.credLock(name)
	lock.Lock()
	cred, err := getCred(ctx, s, name)
	if err == nil && cred == nil {
		err = notFound(name)
	}
	if err == nil && cred.NeedsReauth {
		err = errNeedsReauth{name: name}
	}
	var cur *tokenEntry
	if err == nil {
		cur, err = getToken(ctx, s, name, cred.CurrentTokenID)
	}
	if err != nil || (cur != nil && reusable(cur, cfg, b.now())) {
		lock.Unlock()
		return err
	}
	now := b.now()
	qe := b.guard(name, cred, lim, now)
	if qe == nil {
		cred.Mints = append(cred.Mints, now)
		err = putCred(ctx, s, name, cred)
	}
	lock.Unlock()
	if err != nil {
		return err
	}
	if qe != nil {
		b.Logger().Debug("mint held back by quota guard", "credential", name,
			"retry_at", qe.retryAt.UTC().Format(time.RFC3339))
		return qe
	}

	t, mintErr := b.mintUpstream(ctx, client, cfg, name, cred)

	// Keep the result under the lock; revoke what it retires after.
	lock.Lock()
	retire, err := b.keepMinted(ctx, s, name, cred, t, mintErr, lim)
	lock.Unlock()
	for _, tok := range retire {
		b.revokeBestEffort(ctx, client, tok, cfg, cred.AccountsServer, name)
	}
	return err
}

// keepMinted records a mint's outcome: the new token as current, or the
// failure and its backoff. It returns access tokens to revoke upstream:
// one minted for a credential that changed meanwhile, or the replaced one
// when no lease holds it. Called with the credential's lock held.
func (b *backend) keepMinted(ctx context.Context, s logical.Storage, name string, cred *credEntry,
	t *accounts.Token, mintErr error, lim limits,
) ([]string, error) {
	// The credential may have been replaced or deleted while the request
	// was out; a token minted from the old refresh token is not kept.
	latest, err := getCred(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if latest == nil || latest.RefreshToken != cred.RefreshToken ||
		!latest.CreatedAt.Equal(cred.CreatedAt) {
		if mintErr == nil {
			return []string{t.AccessToken}, errCredentialChanged
		}
		return nil, errCredentialChanged
	}
	cred = latest
	now := b.now()

	if mintErr != nil {
		kind := accounts.KindOf(mintErr)
		cred.recordFailure(kind, now, lim)
		if kind == accounts.KindRevoked {
			cred.NeedsReauth = true
			b.Logger().Error("refresh token rejected, credential needs re-authorization",
				"credential", name, "error", mintErr)
			mintErr = errNeedsReauth{name: name}
		} else {
			b.Logger().Warn("mint access token failed", "credential", name,
				"error", mintErr, "backoff_until", cred.BackoffUntil.UTC().Format(time.RFC3339))
		}
		if err := putCred(ctx, s, name, cred); err != nil {
			b.Logger().Warn("record mint failure", "credential", name, "error", err)
		}
		if now.Before(cred.BackoffUntil) {
			// Say when the engine will try again; a still valid token
			// is served meanwhile.
			_, coded := responseForError(mintErr)
			return nil, &quotaError{
				status:  backoffStatus(cred.BackoffKind),
				reason:  strings.TrimSuffix(coded.Error(), "; retry later"),
				retryAt: cred.BackoffUntil,
				now:     now,
			}
		}
		return nil, mintErr
	}

	// A replaced token nobody holds a lease on is never handed out again:
	// revoke it so it does not count against the live-token cap.
	var retire []string
	prev, err := getToken(ctx, s, name, cred.CurrentTokenID)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Leases <= 0 {
		if err := s.Delete(ctx, tokenKey(name, cred.CurrentTokenID)); err != nil {
			return nil, fmt.Errorf("forget replaced access token: %w", err)
		}
		cred.dropToken(cred.CurrentTokenID, now)
		if now.Before(prev.ExpiresAt) {
			retire = append(retire, prev.AccessToken)
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
	if err := putNewToken(ctx, s, name, id, tok); err != nil {
		return nil, err
	}
	cred.CurrentTokenID = id
	cred.addToken(id, tok.ExpiresAt, now)
	cred.recordSuccess(t.IssuedAt)
	if t.APIDomain != "" {
		cred.APIDomain = t.APIDomain
	}
	if err := putCred(ctx, s, name, cred); err != nil {
		return nil, err
	}
	b.Logger().Debug("access token minted", "credential", name, "token_id", id)
	return retire, nil
}

// mintUpstream sends the one request that makes a new access token: a
// refresh, or a client-credentials grant for a Self Client credential.
func (b *backend) mintUpstream(ctx context.Context, client *accounts.Client, cfg *configEntry,
	id string, cred *credEntry,
) (*accounts.Token, error) {
	if isSelf(id) {
		return client.ClientCredentials(ctx, cred.Scopes, cred.Soid)
	}
	tokenURL, err := endpointAt(cfg.endpoints().TokenURL, cred.AccountsServer)
	if err != nil {
		return nil, err
	}
	return client.Refresh(ctx, cred.RefreshToken, tokenURL)
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
		return nil, logical.CodedError(http.StatusBadRequest, fmt.Sprintf(
			"the access token of this lease was revoked, or its credential deleted "+
				"or replaced; read %s for a new one", credPath(name)))
	}

	now := b.now()
	left := tok.ExpiresAt.Sub(now) - cfg.LeaseSafetyMargin
	if left <= 0 {
		return nil, logical.CodedError(http.StatusBadRequest, fmt.Sprintf(
			"the access token of this lease is about to expire and cannot be "+
				"renewed; read %s again", credPath(name)))
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

	// Decide under the lock; call upstream without it, so reads of the
	// credential never wait on a revocation.
	lock := b.credLock(name)
	lock.Lock()
	tok, last, err := b.endLease(ctx, req.Storage, name, id)
	lock.Unlock()
	if err != nil || !last {
		return nil, err
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

	lock.Lock()
	defer lock.Unlock()
	if err := req.Storage.Delete(ctx, tokenKey(name, id)); err != nil {
		return nil, fmt.Errorf("forget access token: %w", err)
	}
	cred, err := getCred(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		cred.dropToken(id, now)
		if err := putCred(ctx, req.Storage, name, cred); err != nil {
			return nil, err
		}
	}
	b.Logger().Debug("access token revoked", "credential", name, "token_id", id)
	return nil, nil
}

// endLease takes one lease off a token. When it was the last, the token
// stops being handed out and is returned for revocation; a retried
// revocation finds it at zero and is the last again. Called with the
// credential's lock held.
func (b *backend) endLease(ctx context.Context, s logical.Storage, name, id string) (*tokenEntry, bool, error) {
	tok, err := getToken(ctx, s, name, id)
	if err != nil || tok == nil {
		// Gone with its credential, or swept after expiry.
		return nil, false, err
	}
	if tok.Leases--; tok.Leases > 0 {
		return nil, false, putToken(ctx, s, name, id, tok)
	}

	tok.Leases = 0
	if err := putToken(ctx, s, name, id, tok); err != nil {
		return nil, false, err
	}
	cred, err := getCred(ctx, s, name)
	if err != nil {
		return nil, false, err
	}
	if cred != nil && cred.CurrentTokenID == id {
		cred.CurrentTokenID = ""
		if err := putCred(ctx, s, name, cred); err != nil {
			return nil, false, err
		}
	}
	return tok, true, nil
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
