package backend

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
)

const (
	defaultMintLimit     = 10
	defaultMintWindow    = 10 * time.Minute
	defaultMaxLiveTokens = 10

	// Transient failures back off exponentially, with jitter, up to a cap.
	backoffBase = 2 * time.Second
	backoffCap  = 5 * time.Minute
)

// quotaError is a read the guard refused without asking upstream.
type quotaError struct {
	status  int
	reason  string
	retryAt time.Time
	now     time.Time
}

func (q *quotaError) Error() string {
	wait := q.retryAt.Sub(q.now).Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	return fmt.Sprintf("%s; retry after %s (in %s)", q.reason,
		q.retryAt.UTC().Format(time.RFC3339), wait)
}

func (q *quotaError) coded() error { return logical.CodedError(q.status, q.Error()) }

// limits are the quota settings in force.
type limits struct {
	mintLimit int
	window    time.Duration
	maxLive   int
}

func (c *configEntry) limits() limits {
	l := limits{mintLimit: c.MintLimit, window: c.MintWindow, maxLive: c.MaxLiveTokens}
	if l.mintLimit <= 0 {
		l.mintLimit = defaultMintLimit
	}
	if l.window <= 0 {
		l.window = defaultMintWindow
	}
	if l.maxLive <= 0 {
		l.maxLive = defaultMaxLiveTokens
	}
	return l
}

// pruneMints drops mint times that left the window.
func (c *credEntry) pruneMints(now time.Time, window time.Duration) {
	keep := c.Mints[:0]
	for _, m := range c.Mints {
		if now.Sub(m) < window {
			keep = append(keep, m)
		}
	}
	c.Mints = keep
}

// guard says whether a mint may be sent upstream now. It returns a
// quotaError when the provider would refuse it, or when minting would push
// a leased token out of the provider's live-token cap.
func (b *backend) guard(name string, cred *credEntry, l limits, now time.Time) *quotaError {
	if now.Before(cred.BackoffUntil) {
		return &quotaError{
			status:  backoffStatus(cred.BackoffKind),
			reason:  fmt.Sprintf("credential %q is backing off after %s", name, backoffReason(cred.BackoffKind)),
			retryAt: cred.BackoffUntil,
			now:     now,
		}
	}

	cred.pruneMints(now, l.window)
	if len(cred.Mints) >= l.mintLimit {
		return &quotaError{
			status: http.StatusTooManyRequests,
			reason: fmt.Sprintf("credential %q minted %d access tokens in the last %s, "+
				"the accounts server's limit (config mint_limit)", name, len(cred.Mints), l.window),
			retryAt: cred.Mints[0].Add(l.window),
			now:     now,
		}
	}

	live, oldest := cred.liveTokens(now)
	if live >= l.maxLive {
		return &quotaError{
			status: http.StatusTooManyRequests,
			reason: fmt.Sprintf("credential %q has %d live access tokens under lease; "+
				"one more would make the accounts server drop the oldest while in use "+
				"(config max_live_tokens)", name, live),
			retryAt: oldest,
			now:     now,
		}
	}
	return nil
}

// liveTokens counts the credential's unexpired access tokens and returns
// when the first of them expires.
func (c *credEntry) liveTokens(now time.Time) (int, time.Time) {
	live := 0
	var oldest time.Time
	for _, r := range c.Tokens {
		if !now.Before(r.ExpiresAt) {
			continue
		}
		live++
		if oldest.IsZero() || r.ExpiresAt.Before(oldest) {
			oldest = r.ExpiresAt
		}
	}
	return live, oldest
}

// recordFailure sets the backoff after a failed mint: the provider's whole
// window after a throttle answer, exponential with jitter after outages.
func (c *credEntry) recordFailure(kind accounts.Kind, now time.Time, l limits) {
	c.LastError = kind.String()
	c.LastErrorTime = now
	switch {
	case kind == accounts.KindThrottled:
		c.Failures = 0
		c.BackoffKind = kind.String()
		c.BackoffUntil = now.Add(l.window)
	case kind == accounts.KindTimeout || kind == accounts.KindUnavailable ||
		kind == accounts.KindMalformed:
		c.Failures++
		c.BackoffKind = kind.String()
		c.BackoffUntil = now.Add(backoffDelay(c.Failures))
	}
}

func (c *credEntry) recordSuccess(now time.Time) {
	c.Failures = 0
	c.BackoffKind = ""
	c.BackoffUntil = time.Time{}
	c.LastError = ""
	c.LastErrorTime = time.Time{}
	c.LastMint = now
}

// backoffDelay is the wait after n consecutive transient failures: doubling
// from backoffBase up to backoffCap, then jittered to between half and all
// of it so that many credentials don't retry in step.
func backoffDelay(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffCap; i++ {
		d *= 2
	}
	if d > backoffCap {
		d = backoffCap
	}
	return d/2 + rand.N(d/2+1)
}

func backoffStatus(kind string) int {
	switch kind {
	case accounts.KindThrottled.String():
		return http.StatusTooManyRequests
	case accounts.KindTimeout.String():
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func backoffReason(kind string) string {
	switch kind {
	case accounts.KindThrottled.String():
		return "the accounts server throttled it (Access Denied)"
	case accounts.KindTimeout.String():
		return "the accounts server timed out"
	}
	return "the accounts server failed (" + kind + ")"
}
