package accountstest

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Error codes of token answers.
const (
	errInvalidClientSecret = "invalid_client_secret"
	errInvalidCode         = "invalid_code"
	errUnsupportedGrant    = "unsupported_grant_type"
	errMissingOrgInfo      = "missing_org_info"
	errThrottled           = "Access Denied"
)

// The throttle answer, plain and localized.
const (
	throttleDescription = "You have made too many requests continuously. " +
		"Please try again after some time."
	throttleLocalized            = "拒绝访问"
	throttleLocalizedDescription = "您连续发出的请求过多。请稍后再试。"
)

// jsonContentType is the provider's Content-Type of JSON answers.
const jsonContentType = "application/json;charset=UTF-8"

// tokenAnswer is a successful token answer.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	APIDomain    string `json:"api_domain"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExpiresInSec int64  `json:"expires_in_sec,omitempty"`
}

// throttleAnswer is the answer of a throttled token request.
type throttleAnswer struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	Status           string `json:"status"`
}

// handleToken serves POST token.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.counts.TokenRequests++
	f := e.faults
	e.mu.Unlock()

	if !e.injectFaults(w, r, f, true) {
		return
	}

	// Parameters may travel in the query string, the body or both.
	if err := r.ParseForm(); err != nil {
		e.writeTokenError(w, errInvalidRequest, f.Localized)
		return
	}

	ans, code := e.grant(r.Form, e.apiDomain(r))
	e.log("token answer", "grant_type", r.Form.Get("grant_type"),
		"client_id", r.Form.Get("client_id"), "error", code,
		"access_token", fingerprint(ans.AccessToken),
		"refresh_token", fingerprint(ans.RefreshToken))
	if code != "" {
		e.writeTokenError(w, code, f.Localized)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// grant runs a token request and returns its answer or its error code.
func (e *Emulator) grant(form url.Values, apiDomain string) (tokenAnswer,
	string) {
	e.mu.Lock()
	defer e.mu.Unlock()

	// The client is checked before anything that depends on the grant.
	c, ok := e.clients[form.Get("client_id")]
	if !ok {
		return tokenAnswer{}, errInvalidClient
	}
	if subtle.ConstantTimeCompare([]byte(c.Secret),
		[]byte(form.Get("client_secret"))) != 1 {
		return tokenAnswer{}, errInvalidClientSecret
	}

	now := e.now()
	var ans tokenAnswer
	var code string
	switch form.Get("grant_type") {
	case "authorization_code":
		ans, code = e.exchangeCodeLocked(c, form, now)
		if code == "" {
			e.counts.CodeExchanges++
		}
	case "refresh_token":
		ans, code = e.refreshLocked(c, form, now)
		if code == "" {
			e.counts.Refreshes++
		}
	case "client_credentials":
		ans, code = e.clientCredentialsLocked(c, form, now)
		if code == "" {
			e.counts.ClientCredentials++
		}
	default:
		code = errUnsupportedGrant
	}
	if code != "" {
		return tokenAnswer{}, code
	}

	ans.APIDomain = apiDomain
	ans.TokenType = "Bearer"
	ans.ExpiresIn = int64(e.opts.AccessTokenTTL / time.Second)
	if e.opts.LegacyExpiry {
		ans.ExpiresInSec = ans.ExpiresIn
		ans.ExpiresIn = e.opts.AccessTokenTTL.Milliseconds()
	}
	return ans, ""
}

// exchangeCodeLocked runs the authorization_code grant.
func (e *Emulator) exchangeCodeLocked(c Client, form url.Values,
	now time.Time) (tokenAnswer, string) {
	value := form.Get("code")
	gc, ok := e.codes[value]
	if !ok || gc.clientID != c.ID {
		return tokenAnswer{}, errInvalidCode
	}
	if !now.Before(gc.issued.Add(e.opts.CodeTTL)) {
		delete(e.codes, value)
		return tokenAnswer{}, errInvalidCode
	}

	// Self Client codes have no redirect URI; the others must repeat the
	// one of their auth request. A refused exchange leaves the code usable.
	redirectURI := form.Get("redirect_uri")
	if gc.selfClient && redirectURI != "" ||
		!gc.selfClient && redirectURI != gc.redirectURI {
		return tokenAnswer{}, errInvalidRedirectURI
	}
	delete(e.codes, value)

	ans := tokenAnswer{Scope: strings.Join(gc.scopes, " ")}
	var parent *refreshToken
	if gc.offline {
		parent = e.issueRefreshLocked(c.ID, gc.user, gc.scopes)
		ans.RefreshToken = parent.value
	}
	at := e.mintAccessLocked(c.ID, gc.user, gc.scopes, parent, now)
	ans.AccessToken = at.value
	return ans, ""
}

// refreshLocked runs the refresh_token grant. The answer never carries a
// refresh token: the provider does not rotate them.
func (e *Emulator) refreshLocked(c Client, form url.Values,
	now time.Time) (tokenAnswer, string) {
	rt, ok := e.refresh[form.Get("refresh_token")]
	if !ok || rt.clientID != c.ID {
		return tokenAnswer{}, errInvalidCode
	}
	if !e.allowMintLocked(rt, now) {
		return tokenAnswer{}, errThrottled
	}

	at := e.mintAccessLocked(c.ID, rt.user, rt.scopes, rt, now)
	return tokenAnswer{
		AccessToken: at.value,
		Scope:       strings.Join(rt.scopes, " "),
	}, ""
}

// clientCredentialsLocked runs the client_credentials grant of a Self
// Client, which needs the org in soid ("ZohoCRM.<org id>").
func (e *Emulator) clientCredentialsLocked(c Client, form url.Values,
	now time.Time) (tokenAnswer, string) {
	org, ok := strings.CutPrefix(form.Get("soid"), "ZohoCRM.")
	if !ok || org == "" {
		return tokenAnswer{}, errMissingOrgInfo
	}
	scopes := splitScopes(form.Get("scope"))
	if len(scopes) == 0 {
		return tokenAnswer{}, errInvalidScope
	}

	at := e.mintAccessLocked(c.ID, DefaultUser, scopes, nil, now)
	return tokenAnswer{
		AccessToken: at.value,
		Scope:       strings.Join(scopes, " "),
	}, ""
}

// IssueRefreshToken returns a refresh token for user ("" means DefaultUser)
// made outside the emulator's HTTP flow. It counts towards MaxRefreshTokens
// but is not a consent: a later auth request is still the user's first.
func (e *Emulator) IssueRefreshToken(clientID, user string,
	scopes []string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt := e.issueRefreshLocked(clientID, userOrDefault(user),
		slices.Clone(scopes))
	e.log("refresh token issued", "client_id", clientID,
		"refresh_token", fingerprint(rt.value))
	return rt.value
}

// writeTokenError answers a token request with the error code, inside HTTP
// 200 as the provider does.
func (e *Emulator) writeTokenError(w http.ResponseWriter, code string,
	localized bool) {
	if code == errThrottled {
		ans := throttleAnswer{code, throttleDescription, "failure"}
		if localized {
			ans = throttleAnswer{throttleLocalized,
				throttleLocalizedDescription, "failure"}
		}
		e.countError(ans.Error)
		writeJSON(w, http.StatusOK, ans)
		return
	}
	e.countError(code)
	writeJSON(w, http.StatusOK, map[string]string{"error": code})
}
