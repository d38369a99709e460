// Package backend is the Vault secrets engine for Chabad Unity CRM (and any
// Zoho tenant): it keeps the OAuth client and refresh tokens in Vault and
// hands out short-lived access tokens under leases.
package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
	"github.com/unitycrm/vault-plugin-secrets-unitycrm/internal/version"
)

var _ logical.Factory = Factory

// Factory returns a configured backend, as Vault's plugin system asks.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

type backend struct {
	*framework.Backend

	// now is the clock; tests move it.
	now func() time.Time

	// locks serialize storage work on one credential (by name) and on one
	// state. Reads never hold one across an upstream request.
	locks []*locksutil.LockEntry

	// flights make concurrent reads of one credential share one mint.
	flights singleflight.Group

	// cache keeps what reads touch in memory; see cache.go.
	cache *entryCache

	// ttls caches the mount's lease TTLs briefly: each lookup is a round
	// trip to Vault.
	ttls ttlCache

	// counters batch concurrent lease counts per token; see lease_count.go.
	countersMu sync.Mutex
	counters   map[string]*leaseCounter

	// clientMu guards client, the accounts client built from config.
	clientMu sync.RWMutex
	client   *accounts.Client
}

func newBackend() *backend {
	b := &backend{
		now:      time.Now,
		locks:    locksutil.CreateLocks(),
		cache:    newEntryCache(),
		counters: map[string]*leaseCounter{},
	}

	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{
				configPath,
				credsPrefix,
				tokensPrefix,
				statePrefix,
				selfPrefix,
				selfTokensPrefix,
				framework.WALPrefix,
			},
		},
		Paths: framework.PathAppend(
			[]*framework.Path{
				pathConfig(b),
				pathAuthCodeURL(b),
			},
			pathCreds(b),
			pathCredsStatus(b),
			pathSelf(b),
		),
		Secrets: []*framework.Secret{
			secretAccessToken(b),
		},
		Invalidate:        b.invalidate,
		PeriodicFunc:      b.periodic,
		WALRollback:       b.walRollback,
		WALRollbackMinAge: walRollbackMinAge,
		RunningVersion:    version.Version,
	}
	return b
}

// secretFields are request fields that carry secrets. A value of the wrong
// type is refused here: the framework's own type error would quote it.
var secretFields = []string{"client_secret", "code", "state", "callback_url", "refresh_token"}

// HandleRequest refuses secret fields that are not strings, then puts the
// entry cache in front of the request's storage.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	for _, f := range secretFields {
		if v, ok := req.Data[f]; ok && v != nil {
			if _, isString := v.(string); !isString {
				return logical.ErrorResponse(f + " must be a string"), nil
			}
		}
	}
	if cs, ok := req.Storage.(*cachedStorage); req.Storage != nil && !(ok && cs.cache == b.cache) {
		req.Storage = &cachedStorage{Storage: req.Storage, cache: b.cache}
	}
	return b.Backend.HandleRequest(ctx, req)
}

// invalidate forgets what another node changed: a cached entry, and the
// client when the config changed.
func (b *backend) invalidate(_ context.Context, key string) {
	b.cache.drop(key)
	if key == configPath {
		b.resetClient()
	}
}

func (b *backend) resetClient() {
	b.clientMu.Lock()
	defer b.clientMu.Unlock()
	b.client = nil
}

// accountsClient returns the cached client, building it from config on
// first use.
func (b *backend) accountsClient(ctx context.Context, s logical.Storage) (*accounts.Client, *configEntry, error) {
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, errNotConfigured
	}

	b.clientMu.RLock()
	c := b.client
	b.clientMu.RUnlock()
	if c != nil {
		return c, cfg, nil
	}

	b.clientMu.Lock()
	defer b.clientMu.Unlock()
	if b.client == nil {
		b.client = accounts.NewClient(accounts.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoints:    cfg.endpoints(),
			Timeout:      cfg.RequestTimeout,
			Now:          b.now,
		})
	}
	return b.client, cfg, nil
}

// credLock returns the lock of one credential.
func (b *backend) credLock(name string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.locks, "creds/"+name)
}

// periodic sweeps stale grant-code states and dead access tokens.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	start := time.Now()
	now := b.now()
	if err := b.sweepStates(ctx, req.Storage, now); err != nil {
		return fmt.Errorf("sweep states: %w", err)
	}
	if err := b.sweepTokens(ctx, req.Storage, now); err != nil {
		return fmt.Errorf("sweep tokens: %w", err)
	}
	b.Logger().Debug("periodic done", "took", time.Since(start).String())
	return nil
}

const backendHelp = `
The Unity CRM secrets engine keeps the OAuth client of a Chabad Unity CRM
(or any Zoho) tenant and the refresh tokens of authorized users inside
Vault, and hands applications short-lived access tokens under Vault leases.

Configure the client with "config", have a CRM user grant a code through
the URL from "auth-code-url", store the credential with "creds/<name>",
then read "creds/<name>" for a leased access token. Revoking the lease
revokes the token at the accounts server.
`
