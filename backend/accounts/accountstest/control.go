package accountstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxControlBody bounds the body of control requests.
const maxControlBody = 1 << 16

// handleCallback shows a person the URL the browser was redirected to, to
// copy and paste.
func (e *Emulator) handleCallback(w http.ResponseWriter, r *http.Request) {
	u, err := url.Parse(e.origin(r) + r.URL.RequestURI())
	if err != nil {
		u = r.URL
	}
	writeCallbackPage(w, u)
}

// Endpoints names what an emulator at base serves for portal, as label and
// URL pairs, for people and scripts to find their way.
func Endpoints(base, portal string) [][2]string {
	p := base + "/clientoauth/v2/" + portal
	return [][2]string{
		{"authorize", p + "/auth"},
		{"token", p + "/token"},
		{"revoke", p + "/token/revoke"},
		{"crm api", base + "/crm/v6/org"},
		{"callback", base + "/callback"},
		{"counts", base + "/_emulator/counts"},
		{"faults", base + "/_emulator/faults"},
	}
}

// handleIndex lists the endpoints for a person who opens the base URL.
func (e *Emulator) handleIndex(w http.ResponseWriter, r *http.Request) {
	base := e.origin(r)
	var b strings.Builder
	fmt.Fprintf(&b, "Chabad Unity CRM accounts server emulator\n\n")
	for _, l := range Endpoints(base, e.opts.Portal) {
		fmt.Fprintf(&b, "%-10s %s\n", l[0], l[1])
	}
	fmt.Fprintf(&b, "\nThe plain paths under %s/oauth/v2/ work too.\n", base)

	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.Write([]byte(b.String()))
}

// handleCounts serves GET /_emulator/counts.
func (e *Emulator) handleCounts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Counts())
}

// handleFaultsRead serves GET /_emulator/faults.
func (e *Emulator) handleFaultsRead(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.currentFaults())
}

// handleFaultsWrite serves PUT /_emulator/faults: the body replaces every
// fault, so {} switches them all off.
func (e *Emulator) handleFaultsWrite(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	var f Faults
	if err := dec.Decode(&f); err != nil {
		writeControlError(w, fmt.Errorf("faults: %w", err))
		return
	}

	e.SetFaults(f)
	e.log("faults set", "faults", f)
	writeJSON(w, http.StatusOK, f)
}

// handleTokenLive serves GET /_emulator/token?token=...
func (e *Emulator) handleTokenLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{
		"live": e.IsLive(r.URL.Query().Get("token")),
	})
}

// handleControlApprove serves POST /_emulator/approve with url and user, as
// Approve does; url may be a path on the emulator.
func (e *Emulator) handleControlApprove(w http.ResponseWriter,
	r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	if err := r.ParseForm(); err != nil {
		writeControlError(w, err)
		return
	}
	if r.Form.Get("url") == "" {
		writeControlError(w, errors.New("url: missing"))
		return
	}

	// A path alone is taken as one on this emulator.
	authURL := r.Form.Get("url")
	if strings.HasPrefix(authURL, "/") {
		authURL = e.origin(r) + authURL
	}
	callback, err := e.Approve(authURL, r.Form.Get("user"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"callback_url": callback})
}

// handleSelfClientCode serves POST /_emulator/self-client-code with
// client_id and scope, as SelfClientCode does.
func (e *Emulator) handleSelfClientCode(w http.ResponseWriter,
	r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	if err := r.ParseForm(); err != nil {
		writeControlError(w, err)
		return
	}
	if r.Form.Get("client_id") == "" {
		writeControlError(w, errors.New("client_id: missing"))
		return
	}

	code := e.SelfClientCode(r.Form.Get("client_id"),
		splitScopes(r.Form.Get("scope")))
	writeJSON(w, http.StatusOK, map[string]string{"code": code})
}

// writeControlError answers a control request that could not be done: the
// error code of an *AuthError, or else the message.
func writeControlError(w http.ResponseWriter, err error) {
	msg := err.Error()
	var aerr *AuthError
	if errors.As(err, &aerr) {
		msg = aerr.Code
	}
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}
