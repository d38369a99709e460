package backend

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A credential id is its name for creds/<name> and "self/<name>" for a
// Self Client credential; storage keys, locks and lease data use the id.
const (
	credsPrefix      = "creds/"
	tokensPrefix     = "tokens/"
	selfPrefix       = "self/"
	selfTokensPrefix = "selftokens/"

	// tokenIDLen is the number of hex characters of a token id: a prefix
	// of the token's SHA-256, safe for logs.
	tokenIDLen = 16
)

var nameRegex = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$`)

// checkName returns a message when name is not a valid credential name.
func checkName(name string) string {
	if name == "" {
		return "name is required"
	}
	if !nameRegex.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Sprintf("name %s is invalid: use 1 to 128 letters, digits, "+
			"'.', '_' or '-', starting and ending with a letter or digit, without "+
			"'..'", quoteShort(name))
	}
	return ""
}

// maxFieldLen bounds what a field may hold: real values are far shorter,
// and nothing larger is stored or sent upstream.
var maxFieldLen = map[string]int{
	"client_id": 256, "client_secret": 1024, "redirect_uri": 2048, "code": 1024,
	"state": 256, "refresh_token": 2048, "accounts_server": 512, "callback_url": 8192,
	"accounts_url": 2048, "auth_url": 2048, "token_url": 2048, "revoke_url": 2048,
	"portal_id": 32, "soid": 64,
}

// quoteShort quotes a caller's value for a message, cut to a length that
// identifies it without echoing a huge paste.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q… (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// Lists are bounded too.
const (
	maxListLen  = 50
	maxScopeLen = 128
)

// badList returns a message when a list field is too long or holds an
// entry that is.
func badList(field string, items []string, maxItem int) string {
	if len(items) > maxListLen {
		return fmt.Sprintf("%s has %d entries, more than %d", field, len(items), maxListLen)
	}
	for _, it := range items {
		if len(it) > maxItem {
			return fmt.Sprintf("%s entry %s is longer than %d bytes", field,
				quoteShort(it), maxItem)
		}
	}
	return ""
}

// tooLong returns a message naming the first field over its limit.
func tooLong(fields map[string]string) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if max, ok := maxFieldLen[n]; ok && len(fields[n]) > max {
			return fmt.Sprintf("%s is %d bytes long, more than the %d a real value "+
				"needs: check what was pasted", n, len(fields[n]), max)
		}
	}
	return ""
}

// credEntry is one authorized CRM user (or imported refresh token).
type credEntry struct {
	RefreshToken string   `json:"refresh_token"`
	Scopes       []string `json:"scopes"`
	APIDomain    string   `json:"api_domain"`
	// AccountsServer is the origin of the accounts server that issued
	// the refresh token when a redirect named one; empty means the
	// configured endpoints. Refresh and revoke go there.
	AccountsServer string `json:"accounts_server"`
	// Source is how it was made: authorization_code, self_client,
	// refresh_token (imported) or client_credentials.
	Source string `json:"source"`
	// Soid is the organization of a client-credentials credential.
	Soid      string    `json:"soid,omitempty"`
	CreatedAt time.Time `json:"created_at"`

	// CurrentTokenID names the access token reads share.
	CurrentTokenID string `json:"current_token_id"`
	// Tokens indexes the access tokens kept in storage, so the quota
	// guard counts live ones without listing storage.
	Tokens []tokenRef `json:"tokens"`

	// NeedsReauth is set when the accounts server says the refresh token
	// is gone; reads then fail without calling upstream.
	NeedsReauth bool `json:"needs_reauth"`

	// Mints are the times of the token requests sent for this refresh
	// token within the quota window (the code exchange counts).
	Mints    []time.Time `json:"mints"`
	LastMint time.Time   `json:"last_mint"`

	// Failures counts transient failures in a row; BackoffUntil holds
	// upstream requests back after them or after a throttle answer.
	Failures      int       `json:"failures"`
	BackoffUntil  time.Time `json:"backoff_until"`
	BackoffKind   string    `json:"backoff_kind"`
	LastError     string    `json:"last_error"`
	LastErrorTime time.Time `json:"last_error_time"`
}

// tokenRef is an access token's id and expiry.
type tokenRef struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// addToken indexes a new token and drops expired ones from the index.
func (c *credEntry) addToken(id string, expiresAt, now time.Time) {
	c.dropToken("", now)
	c.Tokens = append(c.Tokens, tokenRef{ID: id, ExpiresAt: expiresAt})
}

// dropToken removes id, and every expired token, from the index.
func (c *credEntry) dropToken(id string, now time.Time) {
	keep := c.Tokens[:0]
	for _, r := range c.Tokens {
		if r.ID != id && now.Before(r.ExpiresAt) {
			keep = append(keep, r)
		}
	}
	c.Tokens = keep
}

// tokenEntry is one access token and the number of live leases on it.
type tokenEntry struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	APIDomain   string    `json:"api_domain"`
	Scopes      []string  `json:"scopes"`
	IssuedAt    time.Time `json:"issued_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	Leases      int       `json:"leases"`
}

// tokenID is a stable, non-secret id of an access token.
func tokenID(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return hex.EncodeToString(sum[:])[:tokenIDLen]
}

// isSelf reports whether a credential id names a Self Client credential.
func isSelf(id string) bool { return strings.HasPrefix(id, selfPrefix) }

// credPath is the mount path of a credential, for messages.
func credPath(id string) string {
	if isSelf(id) {
		return id
	}
	return credsPrefix + id
}

func credKey(id string) string {
	if isSelf(id) {
		return id
	}
	return credsPrefix + id
}

func tokenDirKey(id string) string {
	if isSelf(id) {
		return selfTokensPrefix + strings.TrimPrefix(id, selfPrefix) + "/"
	}
	return tokensPrefix + id + "/"
}

func tokenKey(cred, id string) string { return tokenDirKey(cred) + id }

func getCred(ctx context.Context, s logical.Storage, name string) (*credEntry, error) {
	raw, err := s.Get(ctx, credKey(name))
	if err != nil {
		return nil, fmt.Errorf("read credential: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	c := new(credEntry)
	if err := raw.DecodeJSON(c); err != nil {
		return nil, fmt.Errorf("decode credential: %w", err)
	}
	return c, nil
}

func putCred(ctx context.Context, s logical.Storage, name string, c *credEntry) error {
	entry, err := logical.StorageEntryJSON(credKey(name), c)
	if err != nil {
		return fmt.Errorf("encode credential: %w", err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("store credential: %w", err)
	}
	return nil
}

func getToken(ctx context.Context, s logical.Storage, name, id string) (*tokenEntry, error) {
	if id == "" {
		return nil, nil
	}
	raw, err := s.Get(ctx, tokenKey(name, id))
	if err != nil {
		return nil, fmt.Errorf("read access token: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	t := new(tokenEntry)
	if err := raw.DecodeJSON(t); err != nil {
		return nil, fmt.Errorf("decode access token: %w", err)
	}
	return t, nil
}

func putToken(ctx context.Context, s logical.Storage, name, id string, t *tokenEntry) error {
	entry, err := logical.StorageEntryJSON(tokenKey(name, id), t)
	if err != nil {
		return fmt.Errorf("encode access token: %w", err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("store access token: %w", err)
	}
	return nil
}

// deleteTokens forgets every access token of a credential except keep.
func deleteTokens(ctx context.Context, s logical.Storage, name, keep string) error {
	ids, err := s.List(ctx, tokenDirKey(name))
	if err != nil {
		return fmt.Errorf("list access tokens: %w", err)
	}
	for _, id := range ids {
		if id == keep {
			continue
		}
		if err := s.Delete(ctx, tokenKey(name, id)); err != nil {
			return fmt.Errorf("delete access token: %w", err)
		}
	}
	return nil
}

// Expired tokens are found through an index keyed by the hour they expire
// in, so the periodic sweep touches only what it deletes, however many
// credentials there are.
const (
	expiryPrefix = "expiry/"
	expiryBucket = time.Hour
	// sweepGrace keeps a token entry this long past its expiry: Vault
	// revokes the last leases on it (capped by its life) well within.
	sweepGrace = time.Hour
)

// expiryKey is the index entry of one access token.
func expiryKey(credID, tokenID string, expiresAt time.Time) string {
	bucket := expiresAt.Unix() / int64(expiryBucket/time.Second)
	return fmt.Sprintf("%s%d/%s.%s", expiryPrefix, bucket,
		base64.RawURLEncoding.EncodeToString([]byte(credID)), tokenID)
}

// putNewToken stores a freshly minted access token and indexes its expiry.
func putNewToken(ctx context.Context, s logical.Storage, credID, id string, t *tokenEntry) error {
	if err := s.Put(ctx, &logical.StorageEntry{Key: expiryKey(credID, id, t.ExpiresAt)}); err != nil {
		return fmt.Errorf("index access token: %w", err)
	}
	return putToken(ctx, s, credID, id, t)
}

// sweepTokens forgets access tokens that expired over sweepGrace ago, and
// their index entries.
func (b *backend) sweepTokens(ctx context.Context, s logical.Storage, now time.Time) error {
	buckets, err := s.List(ctx, expiryPrefix)
	if err != nil {
		return err
	}
	for _, dir := range buckets {
		n, err := strconv.ParseInt(strings.TrimSuffix(dir, "/"), 10, 64)
		if err != nil {
			continue
		}
		end := time.Unix((n+1)*int64(expiryBucket/time.Second), 0)
		if now.Before(end.Add(sweepGrace)) {
			continue
		}
		if err := b.sweepBucket(ctx, s, expiryPrefix+dir, now); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) sweepBucket(ctx context.Context, s logical.Storage, dir string, now time.Time) error {
	keys, err := s.List(ctx, dir)
	if err != nil {
		return err
	}
	for _, k := range keys {
		enc, id, ok := strings.Cut(k, ".")
		raw, err := base64.RawURLEncoding.DecodeString(enc)
		if ok && err == nil {
			credID := string(raw)
			lock := b.credLock(credID)
			lock.Lock()
			err = b.sweepToken(ctx, s, credID, id, now)
			lock.Unlock()
			if err != nil {
				return err
			}
		}
		if err := s.Delete(ctx, dir+k); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) sweepToken(ctx context.Context, s logical.Storage, credID, id string, now time.Time) error {
	t, err := getToken(ctx, s, credID, id)
	if err != nil || t == nil || now.Before(t.ExpiresAt.Add(sweepGrace)) {
		return err
	}
	if t.Leases > 0 {
		b.Logger().Debug("forgetting expired access token with leases left",
			"credential", credID, "token_id", id, "leases", t.Leases)
	}
	return s.Delete(ctx, tokenKey(credID, id))
}
