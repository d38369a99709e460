package accountstest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Error codes of authorization requests.
const (
	errInvalidClient      = "invalid_client"
	errInvalidRedirectURI = "invalid_redirect_uri"
	errAccessDenied       = "access_denied"
	errUnsupportedResp    = "unsupported_response_type"
	errInvalidScope       = "invalid_scope"
	errInvalidRequest     = "invalid_request"
)

// AuthError is an authorization request refused with an error page instead
// of a redirect, because its client or redirect URI is unknown. Code is
// "invalid_client" or "invalid_redirect_uri".
type AuthError struct {
	Code string
}

// Error names the refusal.
func (e *AuthError) Error() string {
	return "accountstest: authorization refused: " + e.Code
}

// authRequest holds the parameters of GET auth.
type authRequest struct {
	clientID     string
	responseType string
	redirectURI  string
	scopes       []string
	accessType   string
	prompt       string
	state        string
}

// parseAuthRequest reads the parameters of GET auth from q.
func parseAuthRequest(q url.Values) authRequest {
	return authRequest{
		clientID:     q.Get("client_id"),
		responseType: q.Get("response_type"),
		redirectURI:  q.Get("redirect_uri"),
		scopes:       splitScopes(q.Get("scope")),
		accessType:   q.Get("access_type"),
		prompt:       q.Get("prompt"),
		state:        q.Get("state"),
	}
}

// splitScopes splits a scope list on commas (documented) and spaces (what
// most OAuth libraries send).
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' '
	})
}

// values returns the request as query parameters.
func (ar authRequest) values() url.Values {
	q := url.Values{}
	q.Set("client_id", ar.clientID)
	q.Set("response_type", ar.responseType)
	q.Set("redirect_uri", ar.redirectURI)
	q.Set("scope", strings.Join(ar.scopes, ","))
	for k, v := range map[string]string{
		"access_type": ar.accessType, "prompt": ar.prompt, "state": ar.state,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// redirect returns the redirect URI with the pairs appended, in order, to
// its query; an empty state is left out.
func (ar authRequest) redirect(pairs ...string) string {
	var b strings.Builder
	b.WriteString(ar.redirectURI)
	sep := "?"
	if strings.Contains(ar.redirectURI, "?") {
		sep = "&"
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "state" && pairs[i+1] == "" {
			continue
		}
		b.WriteString(sep + url.QueryEscape(pairs[i]) + "=" +
			url.QueryEscape(pairs[i+1]))
		sep = "&"
	}
	return b.String()
}

// errorRedirect returns the redirect reporting code to the client.
func (ar authRequest) errorRedirect(code string) string {
	return ar.redirect("error", code, "state", ar.state)
}

// checkClientLocked refuses a request whose client or redirect URI is not
// registered: those get an error page, never a redirect.
func (e *Emulator) checkClientLocked(ar authRequest) *AuthError {
	c, ok := e.clients[ar.clientID]
	if !ok {
		return &AuthError{Code: errInvalidClient}
	}
	if !slices.Contains(c.RedirectURIs, ar.redirectURI) {
		return &AuthError{Code: errInvalidRedirectURI}
	}
	return nil
}

// checkParams returns the error code to redirect with for a request whose
// client and redirect URI are fine, or "".
func checkParams(ar authRequest) string {
	switch {
	case ar.responseType != "code":
		return errUnsupportedResp
	case len(ar.scopes) == 0:
		return errInvalidScope
	case ar.accessType != "" && ar.accessType != "offline" &&
		ar.accessType != "online":
		return errInvalidRequest
	}
	return ""
}

// decide answers an authorization request that user approved or denied. It
// returns the redirect to send the browser to, or an *AuthError when the
// request deserves an error page.
func (e *Emulator) decide(ar authRequest, user string, approve bool,
	origin string) (string, error) {
	user = userOrDefault(user)

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkClientLocked(ar); err != nil {
		e.counts.Errors[err.Code]++
		e.log("authorization refused", "client_id", ar.clientID,
			"error", err.Code)
		return "", err
	}
	if code := checkParams(ar); code != "" {
		e.counts.Errors[code]++
		return ar.errorRedirect(code), nil
	}
	if !approve {
		e.counts.Denials++
		e.counts.Errors[errAccessDenied]++
		e.log("authorization denied", "client_id", ar.clientID, "user", user)
		return ar.errorRedirect(errAccessDenied), nil
	}

	// A click on Approve still gets no code while the client is throttled.
	e.counts.Approvals++
	now := e.now()
	if !e.allowCodeLocked(ar.clientID, now) {
		e.counts.Errors[errAccessDenied]++
		e.log("grant code throttled", "client_id", ar.clientID)
		return ar.errorRedirect(errAccessDenied), nil
	}

	// A refresh token needs offline access and a consent screen: the
	// user's first for this client, or one forced by prompt=consent.
	key := grantKey{ar.clientID, user}
	first := !e.consented[key]
	e.consented[key] = true
	code := e.issueCodeLocked(grantCode{
		clientID:    ar.clientID,
		redirectURI: ar.redirectURI,
		user:        user,
		scopes:      ar.scopes,
		offline:     ar.accessType == "offline" && (first || ar.prompt == "consent"),
		issued:      now,
	})
	e.log("grant code issued", "client_id", ar.clientID, "user", user,
		"code", fingerprint(code))
	return ar.redirect("code", code, "state", ar.state,
		"location", e.opts.Location,
		"accounts-server", e.accountsServer(origin)), nil
}

// Approve acts as a person who opens authURL, signs in as user ("" means
// DefaultUser) and clicks Approve. It validates the request exactly like GET
// auth and returns the URL the browser would be redirected to: the redirect
// URI with code, state, location and accounts-server, or with error (for
// instance access_denied when the client is throttled). A request naming an
// unknown client or redirect URI gets an *AuthError; a URL that is not an
// auth URL of this emulator gets another error.
func (e *Emulator) Approve(authURL string, user string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("accountstest: bad auth URL: %w", err)
	}
	if !e.isAuthPath(u.Path) {
		return "", fmt.Errorf("accountstest: %q is not an auth endpoint of "+
			"this emulator", u.Path)
	}

	e.mu.Lock()
	e.counts.AuthRequests++
	origin := e.baseURL
	e.mu.Unlock()
	if origin == "" {
		origin = u.Scheme + "://" + u.Host
	}
	return e.decide(parseAuthRequest(u.Query()), user, true, origin)
}

// isAuthPath reports whether p is one of the emulator's GET auth paths.
func (e *Emulator) isAuthPath(p string) bool {
	return p == "/oauth/v2/auth" ||
		p == "/clientoauth/v2/"+e.opts.Portal+"/auth"
}

// SelfClientCode returns a grant code made in the API console's Self Client
// tab for DefaultUser. It is exchanged without redirect_uri, always yields a
// refresh token and is not subject to the grant code throttle.
func (e *Emulator) SelfClientCode(clientID string, scopes []string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	code := e.issueCodeLocked(grantCode{
		clientID:   clientID,
		user:       DefaultUser,
		scopes:     slices.Clone(scopes),
		selfClient: true,
		offline:    true,
		issued:     e.now(),
	})
	e.log("self client code issued", "client_id", clientID,
		"code", fingerprint(code))
	return code
}

// handleAuth serves GET auth: an error page, a redirect, or the consent
// page.
func (e *Emulator) handleAuth(w http.ResponseWriter, r *http.Request) {
	ar := parseAuthRequest(r.URL.Query())

	e.mu.Lock()
	e.counts.AuthRequests++
	auto := e.autoApprove
	aerr := e.checkClientLocked(ar)
	e.mu.Unlock()

	if auto || aerr != nil || checkParams(ar) != "" {
		e.answerDecision(w, r, ar, DefaultUser, true)
		return
	}
	writeConsentPage(w, consentPage{
		App:     ar.clientID,
		Portal:  e.opts.Portal,
		Scopes:  ar.scopes,
		Offline: ar.accessType == "offline",
		Action:  strings.TrimSuffix(r.URL.Path, "/auth") + "/auth/approve",
		Hidden:  ar.values(),
		User:    DefaultUser,
	})
}

// handleConsent serves the consent form's POST.
func (e *Emulator) handleConsent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeHTMLPage(w, http.StatusBadRequest, "Bad request",
			"The consent form could not be read.", errInvalidRequest)
		return
	}

	var approve bool
	switch r.PostForm.Get("action") {
	case "approve":
		approve = true
	case "deny":
	default:
		writeHTMLPage(w, http.StatusBadRequest, "Bad request",
			"Choose Approve or Deny.", errInvalidRequest)
		return
	}
	ar := parseAuthRequest(r.PostForm)
	e.answerDecision(w, r, ar, r.PostForm.Get("user"), approve)
}

// answerDecision redirects the browser as decide says, or shows its error
// page.
func (e *Emulator) answerDecision(w http.ResponseWriter, r *http.Request,
	ar authRequest, user string, approve bool) {
	loc, err := e.decide(ar, user, approve, e.origin(r))
	if err != nil {
		writeAuthErrorPage(w, err.(*AuthError).Code)
		return
	}
	http.Redirect(w, r, loc, http.StatusFound)
}
