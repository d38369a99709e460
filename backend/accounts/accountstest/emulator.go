package accountstest

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults that the zero values of Options stand for.
const (
	DefaultPortal           = "10023122998"      // Chabad Unity CRM portal id
	DefaultLocation         = "us"               // data center in redirects
	DefaultUser             = "user@example.org" // who signs in by default
	DefaultCodeTTL          = 2 * time.Minute    // grant code life
	DefaultAccessTokenTTL   = time.Hour          // access token life
	DefaultMintLimit        = 10                 // mints per refresh token
	DefaultMintWindow       = 10 * time.Minute   // window of DefaultMintLimit
	DefaultMaxLiveTokens    = 15                 // live access per refresh
	DefaultMaxRefreshTokens = 20                 // refresh per user and client
	DefaultCodeLimit        = 4                  // codes per client a minute
)

// Fixed parts of the grant code throttle.
const (
	codeWindow = time.Minute      // CodeLimit counts codes in this window
	codeBlock  = 10 * time.Minute // a throttled client gets no code this long
)

// Options configure an Emulator. The zero value emulates the Chabad Unity CRM
// tenant with the provider's documented limits, at the safe end where the
// documentation disagrees.
type Options struct {
	// Portal is the portal id in /clientoauth/v2/{Portal}/...; "" means
	// DefaultPortal. It is also the org id the CRM API reports.
	Portal string

	// Location is the location parameter of the redirect; "" means "us".
	Location string

	// AccountsServer is the accounts-server parameter of the redirect; ""
	// means the emulator's own base URL.
	AccountsServer string

	// AutoApprove makes GET auth redirect at once, as if DefaultUser had
	// clicked Approve, instead of showing the consent page.
	AutoApprove bool

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// CodeTTL is how long a grant code can be exchanged; 0 means 2 minutes.
	CodeTTL time.Duration

	// AccessTokenTTL is how long an access token lives; 0 means 1 hour.
	AccessTokenTTL time.Duration

	// MintLimit is how many access tokens one refresh token may mint per
	// MintWindow; 0 means 10. The window starts at the first mint. The
	// request over the limit is refused with the throttle error and blocks
	// the refresh token for MintWindow from that request.
	MintLimit int

	// MintWindow is the window of MintLimit; 0 means 10 minutes.
	MintWindow time.Duration

	// MaxLiveTokens is how many access tokens made from one refresh token
	// may be live at once; 0 means 15. Minting one more silently
	// invalidates the oldest.
	MaxLiveTokens int

	// MaxRefreshTokens is how many refresh tokens a user may hold for one
	// client; 0 means 20. Issuing one more deletes the oldest and the
	// access tokens made from it.
	MaxRefreshTokens int

	// CodeLimit is how many grant codes a client may get per minute; 0
	// means 4. The request over the limit, and every request for the next
	// 10 minutes, is redirected with error=access_denied.
	CodeLimit int

	// LegacyExpiry answers expires_in in milliseconds together with
	// expires_in_sec in seconds, the provider's legacy shape.
	LegacyExpiry bool

	// APIDomain is the api_domain of token answers; "" means the
	// emulator's own base URL, where the CRM API is served.
	APIDomain string

	// Logger gets one record per request outcome, with tokens, codes and
	// secrets shown only as fingerprints; nil means no logging.
	Logger *slog.Logger
}

// withDefaults returns o with every zero value replaced by its default.
func (o Options) withDefaults() Options {
	if o.Portal == "" {
		o.Portal = DefaultPortal
	}
	if o.Location == "" {
		o.Location = DefaultLocation
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CodeTTL == 0 {
		o.CodeTTL = DefaultCodeTTL
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if o.MintLimit == 0 {
		o.MintLimit = DefaultMintLimit
	}
	if o.MintWindow == 0 {
		o.MintWindow = DefaultMintWindow
	}
	if o.MaxLiveTokens == 0 {
		o.MaxLiveTokens = DefaultMaxLiveTokens
	}
	if o.MaxRefreshTokens == 0 {
		o.MaxRefreshTokens = DefaultMaxRefreshTokens
	}
	if o.CodeLimit == 0 {
		o.CodeLimit = DefaultCodeLimit
	}
	return o
}

// Client is an OAuth client registered in the API console ("Server Based
// Client"). Redirect URIs match exactly, as strings: a trailing slash makes
// a different URI. A client without redirect URIs can still use Self Client
// codes, refresh tokens and client credentials.
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// Counts is a snapshot of what the emulator has served.
type Counts struct {
	AuthRequests int `json:"auth_requests"` // GET auth and Approve calls
	Approvals    int `json:"approvals"`     // Approve clicks, automatic or not
	Denials      int `json:"denials"`       // Deny clicks
	CodesIssued  int `json:"codes_issued"`  // grant codes, Self Client too

	// TokenRequests counts every POST to a token endpoint, faulted or not.
	TokenRequests int `json:"token_requests"`

	// Successful token requests, by grant type.
	CodeExchanges     int `json:"code_exchanges"`
	Refreshes         int `json:"refreshes"`
	ClientCredentials int `json:"client_credentials"`

	Revocations int `json:"revocations"` // successful revoke calls

	APICalls    int `json:"api_calls"`    // every request under /crm/
	APIRejected int `json:"api_rejected"` // of those, refused for the token

	// Errors maps each error code the emulator answered (in a token or
	// revoke answer, an error redirect or page, or the CRM API) to how many
	// times it did, e.g. "invalid_code", "Access Denied", "INVALID_TOKEN".
	Errors map[string]int `json:"errors"`
}

// Emulator is an http.Handler that serves the accounts server, the CRM API
// and the control endpoints. Create it with New (or NewServer, Listen); it
// is safe for concurrent use.
type Emulator struct {
	opts Options
	mux  *http.ServeMux

	mu          sync.Mutex
	baseURL     string
	autoApprove bool
	faults      Faults
	clients     map[string]Client
	codes       map[string]*grantCode
	refresh     map[string]*refreshToken
	access      map[string]*accessToken
	grants      map[grantKey][]*refreshToken // oldest first
	consented   map[grantKey]bool
	codeRates   map[string]*codeRate // by client id
	counts      Counts
	mints       int // access tokens minted, to schedule sweeps
}

// New returns an Emulator configured by opts. Until SetBaseURL is called it
// takes its base URL from each request's Host header.
func New(opts Options) *Emulator {
	e := &Emulator{
		opts:      opts.withDefaults(),
		clients:   map[string]Client{},
		codes:     map[string]*grantCode{},
		refresh:   map[string]*refreshToken{},
		access:    map[string]*accessToken{},
		grants:    map[grantKey][]*refreshToken{},
		consented: map[grantKey]bool{},
		codeRates: map[string]*codeRate{},
	}
	e.autoApprove = e.opts.AutoApprove
	e.counts.Errors = map[string]int{}
	e.mux = e.routes()
	return e
}

// SetBaseURL sets the emulator's own origin, such as "http://127.0.0.1:8085".
// It is the default accounts-server of redirects and api_domain of token
// answers.
func (e *Emulator) SetBaseURL(u string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.baseURL = strings.TrimRight(u, "/")
}

// AddClient registers c, replacing any client with the same id.
func (e *Emulator) AddClient(c Client) {
	c.RedirectURIs = append([]string(nil), c.RedirectURIs...)

	e.mu.Lock()
	defer e.mu.Unlock()
	e.clients[c.ID] = c
}

// SetAutoApprove switches the consent page off (on=true) or back on.
func (e *Emulator) SetAutoApprove(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.autoApprove = on
}

// SetFaults replaces the injected faults; the zero Faults switch them off.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = f
}

// currentFaults returns the injected faults.
func (e *Emulator) currentFaults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}

// Counts returns a snapshot of what the emulator has served.
func (e *Emulator) Counts() Counts {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.counts
	c.Errors = make(map[string]int, len(e.counts.Errors))
	for k, v := range e.counts.Errors {
		c.Errors[k] = v
	}
	return c
}

// IsLive reports whether token is a live access token or refresh token.
func (e *Emulator) IsLive(token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.refresh[token]; ok {
		return true
	}
	return e.liveAccessLocked(token) != nil
}

// LiveAccessTokens returns how many access tokens made from refreshToken are
// live; 0 for an unknown refresh token.
func (e *Emulator) LiveAccessTokens(refreshToken string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, ok := e.refresh[refreshToken]
	if !ok {
		return 0
	}
	e.pruneLocked(rt)
	return len(rt.access)
}

// RefreshTokens returns how many live refresh tokens user holds for the
// client; "" means DefaultUser.
func (e *Emulator) RefreshTokens(clientID, user string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.grants[grantKey{clientID, userOrDefault(user)}])
}

// ServeHTTP serves the accounts server, the CRM API and the control
// endpoints.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mux.ServeHTTP(w, r)
}

// routes maps every endpoint to its handler.
func (e *Emulator) routes() *http.ServeMux {
	m := http.NewServeMux()
	for _, p := range []string{"/oauth/v2", "/clientoauth/v2/{portal}"} {
		m.HandleFunc("GET "+p+"/auth", e.inPortal(e.handleAuth))
		m.HandleFunc("POST "+p+"/auth/approve", e.inPortal(e.handleConsent))
		m.HandleFunc("POST "+p+"/token", e.inPortal(e.handleToken))
		m.HandleFunc("POST "+p+"/token/revoke", e.inPortal(e.handleRevoke))
	}
	m.HandleFunc("POST /clientoauth/v2/{portal}/auth/token/revoke",
		e.inPortal(e.handleRevoke))

	m.HandleFunc("GET /crm/{version}/org", e.handleOrg)
	m.HandleFunc("GET /crm/{version}/users", e.handleUsers)
	m.HandleFunc("/crm/", e.handleCRMNotFound)

	m.HandleFunc("GET /callback", e.handleCallback)
	m.HandleFunc("GET /{$}", e.handleIndex)

	m.HandleFunc("GET /_emulator/counts", e.handleCounts)
	m.HandleFunc("GET /_emulator/faults", e.handleFaultsRead)
	m.HandleFunc("PUT /_emulator/faults", e.handleFaultsWrite)
	m.HandleFunc("GET /_emulator/token", e.handleTokenLive)
	m.HandleFunc("POST /_emulator/approve", e.handleControlApprove)
	m.HandleFunc("POST /_emulator/self-client-code", e.handleSelfClientCode)
	return m
}

// inPortal answers 404 for a /clientoauth/ path naming another portal.
func (e *Emulator) inPortal(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/clientoauth/") &&
			r.PathValue("portal") != e.opts.Portal {
			writeHTMLPage(w, http.StatusNotFound, "Portal not found",
				"This accounts server serves no such portal.", "")
			return
		}
		h(w, r)
	}
}

// origin returns the emulator's base URL, from SetBaseURL or else from r.
func (e *Emulator) origin(r *http.Request) string {
	e.mu.Lock()
	base := e.baseURL
	e.mu.Unlock()
	if base != "" {
		return base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// accountsServer returns the accounts-server parameter for redirects.
func (e *Emulator) accountsServer(origin string) string {
	if e.opts.AccountsServer != "" {
		return e.opts.AccountsServer
	}
	return origin
}

// apiDomain returns the api_domain of token answers.
func (e *Emulator) apiDomain(r *http.Request) string {
	if e.opts.APIDomain != "" {
		return e.opts.APIDomain
	}
	return e.origin(r)
}

// now reads the emulator's clock.
func (e *Emulator) now() time.Time {
	return e.opts.Now()
}

// countError records one answer carrying the error code.
func (e *Emulator) countError(code string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts.Errors[code]++
}

// log writes one record if a Logger is configured.
func (e *Emulator) log(msg string, args ...any) {
	if e.opts.Logger != nil {
		e.opts.Logger.Info(msg, args...)
	}
}

// fingerprint names a secret value in logs without revealing it.
func fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// userOrDefault returns user, or DefaultUser when it is empty.
func userOrDefault(user string) string {
	if u := strings.TrimSpace(user); u != "" {
		return u
	}
	return DefaultUser
}
