package accountstest

import (
	"net/http"
)

// errInvalidToken answers a revocation of an unknown or dead token.
const errInvalidToken = "invalid_token"

// revokeFailure is the answer of a refused revocation.
type revokeFailure struct {
	Status string `json:"status"`
	Error  string `json:"error"`
}

// handleRevoke serves POST token/revoke. A refresh token takes every access
// token made from it along; an access token goes alone. token_type, when
// sent, must name the kind of the token. Client authentication is not
// checked.
func (e *Emulator) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if !e.injectFaults(w, r, e.currentFaults(), false) {
		return
	}

	if err := r.ParseForm(); err != nil || r.Form.Get("token") == "" {
		e.countError(errInvalidRequest)
		writeJSON(w, http.StatusBadRequest,
			revokeFailure{"failure", errInvalidRequest})
		return
	}

	kind, ok := e.revoke(r.Form.Get("token"), r.Form.Get("token_type"))
	e.log("revocation", "token", fingerprint(r.Form.Get("token")),
		"token_type", kind, "revoked", ok)
	if !ok {
		e.countError(errInvalidToken)
		writeJSON(w, http.StatusBadRequest,
			revokeFailure{"failure", errInvalidToken})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}

// revoke deletes token if it is live and of the kind tokenType names ("" for
// either), and reports its kind and whether it did.
func (e *Emulator) revoke(token, tokenType string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()

	if rt, ok := e.refresh[token]; ok {
		if tokenType != "" && tokenType != "refresh_token" {
			return "refresh_token", false
		}
		e.dropRefreshLocked(rt)
		e.counts.Revocations++
		return "refresh_token", true
	}
	if at := e.liveAccessLocked(token); at != nil {
		if tokenType != "" && tokenType != "access_token" {
			return "access_token", false
		}
		e.dropAccessLocked(at)
		e.counts.Revocations++
		return "access_token", true
	}
	return "", false
}
