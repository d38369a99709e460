package accountstest

import (
	"hash/fnv"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// companyName is the org name the CRM API reports.
const companyName = "Chabad Unity CRM (emulated)"

// apiVersion matches the CRM API versions in paths, such as v2, v2.1, v6.
var apiVersion = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)

// crmError is the CRM API's error answer.
type crmError struct {
	Code    string         `json:"code"`
	Details map[string]any `json:"details"`
	Message string         `json:"message"`
	Status  string         `json:"status"`
}

// crmCaller is who a CRM API request acts for.
type crmCaller struct {
	user string
}

// handleOrg serves GET /crm/{version}/org.
func (e *Emulator) handleOrg(w http.ResponseWriter, r *http.Request) {
	e.serveCRM(w, r, func(c crmCaller) any {
		return map[string]any{"org": []map[string]any{{
			"company_name":  companyName,
			"id":            e.opts.Portal,
			"primary_email": DefaultUser,
		}}}
	})
}

// handleUsers serves GET /crm/{version}/users: whatever the type, the only
// user the emulator knows of is the caller.
func (e *Emulator) handleUsers(w http.ResponseWriter, r *http.Request) {
	e.serveCRM(w, r, func(c crmCaller) any {
		name, _, _ := strings.Cut(c.user, "@")
		return map[string]any{
			"users": []map[string]any{{
				"id":        userID(c.user),
				"email":     c.user,
				"full_name": name,
				"status":    "active",
				"confirm":   true,
				"role":      map[string]string{"name": "CEO"},
				"profile":   map[string]string{"name": "Administrator"},
			}},
			"info": map[string]any{
				"page": 1, "per_page": 200, "count": 1, "more_records": false,
			},
		}
	})
}

// handleCRMNotFound answers a CRM API path the emulator does not serve.
func (e *Emulator) handleCRMNotFound(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.counts.APICalls++
	e.mu.Unlock()
	e.writeURLPatternError(w)
}

// serveCRM checks the version and the access token of a CRM API request,
// then answers body(caller).
func (e *Emulator) serveCRM(w http.ResponseWriter, r *http.Request,
	body func(crmCaller) any) {
	e.mu.Lock()
	e.counts.APICalls++
	e.mu.Unlock()
	if !apiVersion.MatchString(r.PathValue("version")) {
		e.writeURLPatternError(w)
		return
	}

	caller, ok := e.authenticate(r)
	if !ok {
		e.countError("INVALID_TOKEN")
		writeJSON(w, http.StatusUnauthorized, crmError{
			Code:    "INVALID_TOKEN",
			Details: map[string]any{},
			Message: "invalid oauth token",
			Status:  "error",
		})
		return
	}
	writeJSON(w, http.StatusOK, body(caller))
}

// authenticate finds the live access token of r, sent as
// "Zoho-oauthtoken <token>" or "Bearer <token>".
func (e *Emulator) authenticate(r *http.Request) (crmCaller, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	known := strings.EqualFold(scheme, "Zoho-oauthtoken") ||
		strings.EqualFold(scheme, "Bearer")

	e.mu.Lock()
	defer e.mu.Unlock()
	var at *accessToken
	if known && token != "" {
		at = e.liveAccessLocked(token)
	}
	if at == nil {
		e.counts.APIRejected++
		e.log("api call rejected", "path", r.URL.Path,
			"token", fingerprint(token))
		return crmCaller{}, false
	}
	return crmCaller{user: at.user}, true
}

// writeURLPatternError answers the CRM API's error for an unknown path.
func (e *Emulator) writeURLPatternError(w http.ResponseWriter) {
	e.countError("INVALID_URL_PATTERN")
	writeJSON(w, http.StatusNotFound, crmError{
		Code:    "INVALID_URL_PATTERN",
		Details: map[string]any{},
		Message: "Please check if the URL trying to access is a correct one",
		Status:  "error",
	})
}

// userID returns a stable numeric id for the user's email.
func userID(email string) string {
	h := fnv.New64a()
	h.Write([]byte(email))
	return strconv.FormatUint(4_000_000_000_000+h.Sum64()%1_000_000_000_000, 10)
}
