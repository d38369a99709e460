package accountstest

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"
)

// sweepEvery is how many mints pass between sweeps of expired state.
const sweepEvery = 256

// grantKey names the grants one user made to one client.
type grantKey struct{ clientID, user string }

// grantCode is an authorization code waiting to be exchanged.
type grantCode struct {
	clientID    string
	redirectURI string // "" for a Self Client code
	user        string
	scopes      []string
	selfClient  bool
	offline     bool // the exchange issues a refresh token
	issued      time.Time
}

// refreshToken is a live refresh token and what it has minted.
type refreshToken struct {
	value    string
	clientID string
	user     string
	scopes   []string
	access   []*accessToken // made from it, oldest first; may hold expired

	windowStart  time.Time // start of the current mint window
	mints        int       // access tokens minted in that window
	blockedUntil time.Time // throttled until then
}

// accessToken is an access token that has not been revoked or evicted.
type accessToken struct {
	value    string
	clientID string
	user     string
	scopes   []string
	expires  time.Time
	parent   *refreshToken // nil unless made from a refresh token
}

// codeRate is a client's grant code throttle.
type codeRate struct {
	issued       []time.Time // codes issued in the last codeWindow
	blockedUntil time.Time
}

// newToken returns a fresh value shaped like the provider's tokens and codes:
// "1000." and two groups of 32 hex digits.
func newToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails; it crashes the program instead
	return "1000." + hex.EncodeToString(b[:16]) + "." + hex.EncodeToString(b[16:])
}

// issueCodeLocked stores c under a new code value and returns the value.
func (e *Emulator) issueCodeLocked(c grantCode) string {
	code := newToken()
	e.codes[code] = &c
	e.counts.CodesIssued++
	return code
}

// allowCodeLocked applies the grant code throttle to one more code for the
// client at now.
func (e *Emulator) allowCodeLocked(clientID string, now time.Time) bool {
	cr := e.codeRates[clientID]
	if cr == nil {
		cr = &codeRate{}
		e.codeRates[clientID] = cr
	}
	if now.Before(cr.blockedUntil) {
		return false
	}

	recent := cr.issued[:0]
	for _, t := range cr.issued {
		if now.Sub(t) < codeWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= e.opts.CodeLimit {
		cr.issued = nil
		cr.blockedUntil = now.Add(codeBlock)
		return false
	}
	cr.issued = append(recent, now)
	return true
}

// issueRefreshLocked creates a refresh token, first deleting the user's
// oldest ones for the client beyond MaxRefreshTokens.
func (e *Emulator) issueRefreshLocked(clientID, user string,
	scopes []string) *refreshToken {
	key := grantKey{clientID, user}
	for len(e.grants[key]) >= e.opts.MaxRefreshTokens {
		e.dropRefreshLocked(e.grants[key][0])
	}

	rt := &refreshToken{
		value:    newToken(),
		clientID: clientID,
		user:     user,
		scopes:   slices.Clone(scopes),
	}
	e.refresh[rt.value] = rt
	e.grants[key] = append(e.grants[key], rt)
	return rt
}

// dropRefreshLocked deletes rt and every access token made from it.
func (e *Emulator) dropRefreshLocked(rt *refreshToken) {
	for _, at := range rt.access {
		delete(e.access, at.value)
	}
	rt.access = nil
	delete(e.refresh, rt.value)

	key := grantKey{rt.clientID, rt.user}
	list := slices.DeleteFunc(e.grants[key], func(x *refreshToken) bool {
		return x == rt
	})
	if len(list) == 0 {
		delete(e.grants, key)
		return
	}
	e.grants[key] = list
}

// allowMintLocked applies MintLimit to one more access token from rt at now.
func (e *Emulator) allowMintLocked(rt *refreshToken, now time.Time) bool {
	if now.Before(rt.blockedUntil) {
		return false
	}
	if rt.windowStart.IsZero() ||
		!now.Before(rt.windowStart.Add(e.opts.MintWindow)) {
		rt.windowStart = now
		rt.mints = 0
	}
	if rt.mints >= e.opts.MintLimit {
		rt.blockedUntil = now.Add(e.opts.MintWindow)
		return false
	}
	rt.mints++
	return true
}

// mintAccessLocked creates an access token; one made from parent evicts the
// oldest live one beyond MaxLiveTokens.
func (e *Emulator) mintAccessLocked(clientID, user string, scopes []string,
	parent *refreshToken, now time.Time) *accessToken {
	e.mints++
	if e.mints%sweepEvery == 0 {
		e.sweepLocked(now)
	}

	at := &accessToken{
		value:    newToken(),
		clientID: clientID,
		user:     user,
		scopes:   slices.Clone(scopes),
		expires:  now.Add(e.opts.AccessTokenTTL),
		parent:   parent,
	}
	if parent != nil {
		e.pruneLocked(parent)
		for len(parent.access) >= e.opts.MaxLiveTokens {
			e.dropAccessLocked(parent.access[0])
		}
		parent.access = append(parent.access, at)
	}
	e.access[at.value] = at
	return at
}

// liveAccessLocked returns the access token named value if it is live.
func (e *Emulator) liveAccessLocked(value string) *accessToken {
	at := e.access[value]
	if at == nil {
		return nil
	}
	if !e.now().Before(at.expires) {
		e.dropAccessLocked(at)
		return nil
	}
	return at
}

// dropAccessLocked deletes one access token.
func (e *Emulator) dropAccessLocked(at *accessToken) {
	delete(e.access, at.value)
	if p := at.parent; p != nil {
		p.access = slices.DeleteFunc(p.access, func(x *accessToken) bool {
			return x == at
		})
	}
}

// pruneLocked forgets the expired access tokens made from rt.
func (e *Emulator) pruneLocked(rt *refreshToken) {
	now := e.now()
	live := rt.access[:0]
	for _, at := range rt.access {
		if now.Before(at.expires) {
			live = append(live, at)
			continue
		}
		delete(e.access, at.value)
	}
	clear(rt.access[len(live):])
	rt.access = live
}

// sweepLocked forgets every expired access token and grant code.
func (e *Emulator) sweepLocked(now time.Time) {
	for _, at := range e.access {
		if !now.Before(at.expires) {
			e.dropAccessLocked(at)
		}
	}
	for code, c := range e.codes {
		if !now.Before(c.issued.Add(e.opts.CodeTTL)) {
			delete(e.codes, code)
		}
	}
}
