// Package accounts speaks the OAuth 2.0 dialect of the Zoho accounts server
// as white-labelled by Chabad Unity CRM: grant-code URLs, code exchange,
// refresh, client credentials and revocation. Every answer, including the
// errors the server sends inside HTTP 200, comes back as a Token or an
// *Error; nothing here logs or returns a secret in an error.
package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	opExchange          = "exchange"
	opRefresh           = "refresh"
	opClientCredentials = "client_credentials"
	opRevoke            = "revoke"

	// DefaultTimeout bounds every request when Config.Timeout is zero.
	DefaultTimeout = 30 * time.Second

	// defaultTokenLife is the documented life of an access token, used
	// when an answer carries no expiry.
	defaultTokenLife = time.Hour

	// maxSecondsExpiry is the largest expires_in read as seconds. Larger
	// values are the legacy millisecond field (3600000 for one hour).
	maxSecondsExpiry = 86400

	// maxBody caps what is read of a revoke answer.
	maxBody = 1 << 16
)

// Endpoints are the three URLs of an accounts server.
type Endpoints struct {
	AuthURL   string
	TokenURL  string
	RevokeURL string
}

// Config is what a Client needs. It is copied by NewClient.
type Config struct {
	ClientID     string
	ClientSecret string
	Endpoints    Endpoints
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient is used for every request; nil means a pooled client
	// from go-cleanhttp.
	HTTPClient *http.Client
	// Now is the clock for expiry times; nil means time.Now.
	Now func() time.Time
}

// Client calls one accounts server. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
}

// NewClient returns a Client for cfg.
func NewClient(cfg Config) *Client {
	c := &Client{cfg: cfg, http: cfg.HTTPClient, now: cfg.Now}
	if c.http == nil {
		c.http = cleanhttp.DefaultPooledClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = DefaultTimeout
	}
	return c
}

// Token is a successful token answer.
type Token struct {
	AccessToken string
	// RefreshToken is empty on refresh answers: the provider does not
	// rotate refresh tokens.
	RefreshToken string
	TokenType    string
	// APIDomain is the API host for this account's data center, as
	// returned; never derive it.
	APIDomain string
	Scopes    []string
	// ExpiresIn is the token's life as the answer stated it, in whichever
	// field and unit it used.
	ExpiresIn time.Duration
	IssuedAt  time.Time
}

// ExpiresAt is when the access token stops working.
func (t *Token) ExpiresAt() time.Time { return t.IssuedAt.Add(t.ExpiresIn) }

// AuthCodeRequest is what goes into a grant-code URL.
type AuthCodeRequest struct {
	RedirectURI string
	Scopes      []string
	State       string
	// AccessType is "offline" (a refresh token is issued) or "online".
	AccessType string
	// Prompt "consent" makes the server issue a refresh token again for a
	// user who consented before.
	Prompt string
}

// AuthCodeURL builds the URL a person opens to grant a code.
func (c *Client) AuthCodeURL(r AuthCodeRequest) string {
	oc := c.oauthConfig(r.RedirectURI)
	opts := []oauth2.AuthCodeOption{
		// The provider documents comma-separated scopes; oauth2 would
		// join them with spaces.
		oauth2.SetAuthURLParam("scope", strings.Join(r.Scopes, ",")),
	}
	if r.AccessType != "" {
		opts = append(opts, oauth2.SetAuthURLParam("access_type", r.AccessType))
	}
	if r.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", r.Prompt))
	}
	return oc.AuthCodeURL(r.State, opts...)
}

// Exchange trades a grant code for tokens. redirectURI must be the one the
// code was issued for; it is empty for Self Client codes made in the API
// console. tokenURL, when not empty, replaces the configured token URL (a
// code must be exchanged at the accounts server that issued it).
func (c *Client) Exchange(ctx context.Context, code, redirectURI, tokenURL string) (*Token, error) {
	ctx, cancel := c.context(ctx)
	defer cancel()

	oc := c.oauthConfig(redirectURI)
	if tokenURL != "" {
		oc.Endpoint.TokenURL = tokenURL
	}
	issued := c.now()
	tok, err := oc.Exchange(ctx, code)
	if err != nil {
		return nil, classify(opExchange, err)
	}
	return c.token(opExchange, tok, issued)
}

// Refresh mints an access token from a refresh token. tokenURL, when not
// empty, replaces the configured token URL.
func (c *Client) Refresh(ctx context.Context, refreshToken, tokenURL string) (*Token, error) {
	ctx, cancel := c.context(ctx)
	defer cancel()

	oc := c.oauthConfig("")
	if tokenURL != "" {
		oc.Endpoint.TokenURL = tokenURL
	}
	issued := c.now()
	tok, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, classify(opRefresh, err)
	}
	out, err := c.token(opRefresh, tok, issued)
	if err != nil {
		return nil, err
	}
	// oauth2 copies the old refresh token into the answer; the caller
	// keeps its own, so report only what the server sent.
	if out.RefreshToken == refreshToken {
		out.RefreshToken = ""
	}
	return out, nil
}

// ClientCredentials mints an access token with the client-credentials
// grant (a Self Client). soid is "ZohoCRM.<org id>".
func (c *Client) ClientCredentials(ctx context.Context, scopes []string, soid string) (*Token, error) {
	ctx, cancel := c.context(ctx)
	defer cancel()

	cc := clientcredentials.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		TokenURL:     c.cfg.Endpoints.TokenURL,
		AuthStyle:    oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"scope": {strings.Join(scopes, ",")},
		},
	}
	if soid != "" {
		cc.EndpointParams.Set("soid", soid)
	}
	issued := c.now()
	tok, err := cc.TokenSource(ctx).Token()
	if err != nil {
		return nil, classify(opClientCredentials, err)
	}
	return c.token(opClientCredentials, tok, issued)
}

// Revoke revokes a refresh token (and with it every access token made from
// it) or a single access token. revokeURL, when not empty, replaces the
// configured one. A token the server does not know gives an *Error of
// KindInvalidToken: for a caller that wants it gone, that is success.
func (c *Client) Revoke(ctx context.Context, token, revokeURL string) error {
	ctx, cancel := c.context(ctx)
	defer cancel()

	if revokeURL == "" {
		revokeURL = c.cfg.Endpoints.RevokeURL
	}
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, revokeURL,
		strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Op: opRevoke, Kind: KindMalformed, err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		return classify(opRevoke, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return classify(opRevoke, err)
	}

	return revokeAnswer(resp.StatusCode, body)
}

// revokeAnswer reads the answer of a revoke call.
func revokeAnswer(status int, body []byte) error {
	var ans struct {
		Status           string `json:"status"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	parsed := json.Unmarshal(body, &ans) == nil

	switch {
	case status >= 500:
		return &Error{Op: opRevoke, Kind: KindUnavailable, Status: status}
	case status == http.StatusTooManyRequests:
		return &Error{Op: opRevoke, Kind: KindThrottled, Status: status}
	case parsed && ans.Error != "":
		kind := classifyCode(opRevoke, ans.Error, ans.ErrorDescription)
		if kind == KindUnknown && status == http.StatusBadRequest {
			kind = KindInvalidToken
		}
		return &Error{Op: opRevoke, Kind: kind, Code: ans.Error, Status: status}
	case status == http.StatusBadRequest:
		return &Error{Op: opRevoke, Kind: KindInvalidToken, Status: status}
	case status == http.StatusOK && parsed && strings.EqualFold(ans.Status, "success"):
		return nil
	}
	return &Error{Op: opRevoke, Kind: KindMalformed, Status: status}
}

func (c *Client) context(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.http)
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

func (c *Client) oauthConfig(redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:  c.cfg.Endpoints.AuthURL,
			TokenURL: c.cfg.Endpoints.TokenURL,
			// Auto-detection would try HTTP Basic first and spend a
			// request; the provider wants the parameters.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// token reads the fields oauth2 does not know: api_domain, scope and the
// expiry in the provider's units.
func (c *Client) token(op string, tok *oauth2.Token, issued time.Time) (*Token, error) {
	life, ok := expiry(tok)
	if !ok {
		return nil, &Error{Op: op, Kind: KindMalformed, Code: "expires_in"}
	}
	out := &Token{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		ExpiresIn:    life,
		IssuedAt:     issued,
	}
	if s, ok := tok.Extra("api_domain").(string); ok {
		out.APIDomain = s
	}
	if s, ok := tok.Extra("scope").(string); ok {
		out.Scopes = SplitScopes(s)
	}
	return out, nil
}

// expiry reads the token's life. expires_in_sec wins when present; a bare
// expires_in above a day is the legacy millisecond value. No expiry at all
// means the documented hour. A value that is not a positive number is
// malformed.
func expiry(tok *oauth2.Token) (time.Duration, bool) {
	if v := tok.Extra("expires_in_sec"); v != nil {
		n, ok := number(v)
		if !ok || n <= 0 {
			return 0, false
		}
		return seconds(n), true
	}
	v := tok.Extra("expires_in")
	if v == nil {
		return defaultTokenLife, true
	}
	n, ok := number(v)
	if !ok || n <= 0 {
		return 0, false
	}
	if n > maxSecondsExpiry {
		n /= 1000
	}
	return seconds(n), true
}

func seconds(n float64) time.Duration {
	return time.Duration(math.Round(n)) * time.Second
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		return f, err == nil
	}
	return 0, false
}

// SplitScopes splits a scope list written with commas, spaces or both.
func SplitScopes(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n'
	})
	if len(fields) == 0 {
		return nil
	}
	return fields
}

// Endpoint paths below an accounts server origin.
const (
	portalPrefix   = "/clientoauth/v2/"
	standardPrefix = "/oauth/v2"
)

// DefaultEndpoints returns the endpoints below accountsURL: the portal
// shape {accounts}/clientoauth/v2/{portal}/... when portalID is set, the
// standard {accounts}/oauth/v2/... otherwise.
func DefaultEndpoints(accountsURL, portalID string) Endpoints {
	base := strings.TrimRight(accountsURL, "/")
	prefix := base + standardPrefix
	if portalID != "" {
		prefix = base + portalPrefix + portalID
	}
	return Endpoints{
		AuthURL:   prefix + "/auth",
		TokenURL:  prefix + "/token",
		RevokeURL: prefix + "/token/revoke",
	}
}

// AtOrigin returns rawURL with its scheme and host replaced by origin's,
// keeping the path: a code is exchanged at the accounts server named in
// the redirect, with the path shape of the configured token URL.
func AtOrigin(rawURL, origin string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse endpoint: %w", err)
	}
	o, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("parse origin: %w", err)
	}
	u.Scheme, u.Host = o.Scheme, o.Host
	return u.String(), nil
}

// DataCenters maps a data center to its accounts server, for plain Zoho
// tenants.
var DataCenters = map[string]string{
	"us": "https://accounts.zoho.com",
	"eu": "https://accounts.zoho.eu",
	"in": "https://accounts.zoho.in",
	"au": "https://accounts.zoho.com.au",
	"jp": "https://accounts.zoho.jp",
	"cn": "https://accounts.zoho.com.cn",
	"ca": "https://accounts.zohocloud.ca",
	"sa": "https://accounts.zoho.sa",
	"uk": "https://accounts.zoho.uk",
}
