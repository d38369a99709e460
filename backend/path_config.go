package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
)

const (
	configPath = "config"

	defaultAccountsURL    = "https://crm.chabad.comeunity.me"
	defaultPortalID       = "10023122998"
	defaultRequestTimeout = 30 * time.Second
	defaultMinTokenTTL    = 5 * time.Minute
	defaultLeaseMargin    = 30 * time.Second
)

var defaultScopes = []string{
	"ZohoCRM.modules.ALL",
	"ZohoCRM.settings.ALL",
	"ZohoCRM.users.ALL",
	"ZohoCRM.org.ALL",
}

var errNotConfigured = errors.New("the engine is not configured: write config first")

// configEntry is the stored configuration.
type configEntry struct {
	ClientID          string   `json:"client_id"`
	ClientSecret      string   `json:"client_secret"`
	RedirectURI       string   `json:"redirect_uri"`
	ExtraRedirectURIs []string `json:"extra_redirect_uris"`

	DataCenter  string `json:"data_center"`
	AccountsURL string `json:"accounts_url"`
	PortalID    string `json:"portal_id"`
	AuthURL     string `json:"auth_url"`
	TokenURL    string `json:"token_url"`
	RevokeURL   string `json:"revoke_url"`

	Scopes                 []string `json:"scopes"`
	AllowedAccountsServers []string `json:"allowed_accounts_servers"`

	RequestTimeout    time.Duration `json:"request_timeout"`
	MinTokenTTL       time.Duration `json:"min_token_ttl"`
	LeaseSafetyMargin time.Duration `json:"lease_safety_margin"`

	MintLimit     int           `json:"mint_limit"`
	MintWindow    time.Duration `json:"mint_window"`
	MaxLiveTokens int           `json:"max_live_tokens"`
}

// endpoints are the effective URLs: overrides win over the ones derived
// from accounts_url and portal_id.
func (c *configEntry) endpoints() accounts.Endpoints {
	e := accounts.DefaultEndpoints(c.AccountsURL, c.PortalID)
	if c.AuthURL != "" {
		e.AuthURL = c.AuthURL
	}
	if c.TokenURL != "" {
		e.TokenURL = c.TokenURL
	}
	if c.RevokeURL != "" {
		e.RevokeURL = c.RevokeURL
	}
	return e
}

// allowedOrigins are the accounts servers a redirect may name. By default
// the origins of accounts_url and of the token URL.
func (c *configEntry) allowedOrigins() []string {
	if len(c.AllowedAccountsServers) > 0 {
		return c.AllowedAccountsServers
	}
	seen := map[string]bool{}
	var out []string
	for _, raw := range []string{c.AccountsURL, c.endpoints().TokenURL} {
		if o, err := origin(raw); err == nil && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

// redirectAllowed reports whether uri is the configured redirect URI or
// one of the extra ones.
func (c *configEntry) redirectAllowed(uri string) bool {
	if uri == c.RedirectURI {
		return uri != ""
	}
	for _, u := range c.ExtraRedirectURIs {
		if u == uri {
			return true
		}
	}
	return false
}

func getConfig(ctx context.Context, s logical.Storage) (*configEntry, error) {
	entry, err := s.Get(ctx, configPath)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	cfg := new(configEntry)
	if err := entry.DecodeJSON(cfg); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	return cfg, nil
}

func pathConfig(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: configPath,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"client_id": {
				Type:        framework.TypeString,
				Description: "OAuth client id from the API console. Required.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Client ID",
				},
			},
			"client_secret": {
				Type:        framework.TypeString,
				Description: "OAuth client secret. Required on first write; never returned.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name:      "Client secret",
					Sensitive: true,
				},
			},
			"redirect_uri": {
				Type:        framework.TypeString,
				Description: "Default redirect URI, exactly as registered in the API console.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Redirect URI",
				},
			},
			"extra_redirect_uris": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Other registered redirect URIs an auth-code-url request may name.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Extra redirect URIs",
				},
			},
			"data_center": {
				Type: framework.TypeString,
				Description: "Plain Zoho data center (us, eu, in, au, jp, cn, ca, sa, uk); " +
					"sets accounts_url and clears portal_id.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Data center",
				},
			},
			"accounts_url": {
				Type:        framework.TypeString,
				Description: "Accounts server origin. Default " + defaultAccountsURL + ".",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Accounts URL",
				},
			},
			"portal_id": {
				Type: framework.TypeString,
				Description: "Vertical Solutions portal id; endpoints are " +
					"{accounts_url}/clientoauth/v2/{portal_id}/... Empty for the standard " +
					"{accounts_url}/oauth/v2/... Default " + defaultPortalID + ".",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Portal ID",
				},
			},
			"auth_url": {
				Type:        framework.TypeString,
				Description: "Override of the authorization endpoint.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Authorization URL",
				},
			},
			"token_url": {
				Type:        framework.TypeString,
				Description: "Override of the token endpoint (https; http only on loopback).",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Token URL",
				},
			},
			"revoke_url": {
				Type:        framework.TypeString,
				Description: "Override of the revocation endpoint (https; http only on loopback).",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Revoke URL",
				},
			},
			"scopes": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Default scopes. Default " + strings.Join(defaultScopes, ",") + ".",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Scopes",
				},
			},
			"allowed_accounts_servers": {
				Type: framework.TypeCommaStringSlice,
				Description: "Origins (scheme://host[:port]) a redirect's accounts-server " +
					"may name. Default the origin of accounts_url.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Allowed accounts servers",
				},
			},
			"request_timeout": {
				Type:        framework.TypeDurationSecond,
				Description: "Timeout of each request to the accounts server. Default 30s.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Request timeout",
				},
			},
			"min_token_ttl": {
				Type: framework.TypeDurationSecond,
				Description: "A read reuses the current access token while it has at " +
					"least this long to live. Default 5m.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Minimum token TTL",
				},
			},
			"lease_safety_margin": {
				Type:        framework.TypeDurationSecond,
				Description: "Leases end this long before their token expires. Default 30s.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Lease safety margin",
				},
			},
			"mint_limit": {
				Type: framework.TypeInt,
				Description: "Most access tokens minted per refresh token per mint_window. " +
					"Default 10, the accounts server's limit.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Mint limit",
				},
			},
			"mint_window": {
				Type:        framework.TypeDurationSecond,
				Description: "Window of mint_limit, and the backoff after a throttle answer. Default 10m.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Mint window",
				},
			},
			"max_live_tokens": {
				Type: framework.TypeInt,
				Description: "Most live access tokens per refresh token; past the accounts " +
					"server's cap it silently drops the oldest. Default 10.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Max live tokens",
				},
			},
		},
		ExistenceCheck: b.pathConfigExistenceCheck,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathConfigRead,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationSuffix: "configuration",
				},
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb: "configure",
				},
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb: "configure",
				},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigDelete,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationSuffix: "configuration",
				},
			},
		},
		HelpSynopsis:    pathConfigHelpSyn,
		HelpDescription: pathConfigHelpDesc,
	}
}

func (b *backend) pathConfigExistenceCheck(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return false, err
	}
	return cfg != nil, nil
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, nil
	}

	e := cfg.endpoints()
	return &logical.Response{
		Data: map[string]interface{}{
			"client_id":                cfg.ClientID,
			"redirect_uri":             cfg.RedirectURI,
			"extra_redirect_uris":      nonNil(cfg.ExtraRedirectURIs),
			"data_center":              cfg.DataCenter,
			"accounts_url":             cfg.AccountsURL,
			"portal_id":                cfg.PortalID,
			"auth_url":                 e.AuthURL,
			"token_url":                e.TokenURL,
			"revoke_url":               e.RevokeURL,
			"scopes":                   cfg.Scopes,
			"allowed_accounts_servers": cfg.allowedOrigins(),
			"request_timeout":          int64(cfg.RequestTimeout.Seconds()),
			"min_token_ttl":            int64(cfg.MinTokenTTL.Seconds()),
			"lease_safety_margin":      int64(cfg.LeaseSafetyMargin.Seconds()),
			"mint_limit":               cfg.limits().mintLimit,
			"mint_window":              int64(cfg.limits().window.Seconds()),
			"max_live_tokens":          cfg.limits().maxLive,
		},
	}, nil
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &configEntry{
			AccountsURL:       defaultAccountsURL,
			PortalID:          defaultPortalID,
			Scopes:            defaultScopes,
			RequestTimeout:    defaultRequestTimeout,
			MinTokenTTL:       defaultMinTokenTTL,
			LeaseSafetyMargin: defaultLeaseMargin,
			MintLimit:         defaultMintLimit,
			MintWindow:        defaultMintWindow,
			MaxLiveTokens:     defaultMaxLiveTokens,
		}
	}

	// Apply only the fields present, so an update keeps the rest.
	var problems []string
	setString(d, "client_id", &cfg.ClientID)
	setString(d, "client_secret", &cfg.ClientSecret)
	setString(d, "redirect_uri", &cfg.RedirectURI)
	setStrings(d, "extra_redirect_uris", &cfg.ExtraRedirectURIs)
	setString(d, "auth_url", &cfg.AuthURL)
	setString(d, "token_url", &cfg.TokenURL)
	setString(d, "revoke_url", &cfg.RevokeURL)
	setStrings(d, "scopes", &cfg.Scopes)
	setStrings(d, "allowed_accounts_servers", &cfg.AllowedAccountsServers)
	setDuration(d, "request_timeout", &cfg.RequestTimeout)
	setDuration(d, "min_token_ttl", &cfg.MinTokenTTL)
	setDuration(d, "lease_safety_margin", &cfg.LeaseSafetyMargin)
	setInt(d, "mint_limit", &cfg.MintLimit)
	setDuration(d, "mint_window", &cfg.MintWindow)
	setInt(d, "max_live_tokens", &cfg.MaxLiveTokens)

	// data_center presets the accounts server of a plain Zoho tenant.
	dc, dcSet := d.GetOk("data_center")
	_, urlSet := d.GetOk("accounts_url")
	_, portalSet := d.GetOk("portal_id")
	switch {
	case dcSet && urlSet && dc.(string) != "":
		problems = append(problems, "data_center and accounts_url: set one, not both")
	case dcSet && dc.(string) != "":
		name := strings.ToLower(strings.TrimSpace(dc.(string)))
		if u, ok := accounts.DataCenters[name]; ok {
			cfg.DataCenter, cfg.AccountsURL = name, u
			if !portalSet {
				cfg.PortalID = ""
			}
		} else {
			problems = append(problems, fmt.Sprintf(
				"data_center %s is unknown: use one of %s", quoteShort(dc.(string)), dataCenterNames()))
		}
	case urlSet:
		cfg.DataCenter = ""
	case dcSet:
		// data_center="" clears the preset but keeps the URL.
		cfg.DataCenter = ""
	}
	setString(d, "accounts_url", &cfg.AccountsURL)
	setString(d, "portal_id", &cfg.PortalID)

	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return logical.ErrorResponse("invalid config: " + strings.Join(problems, "; ")), nil
	}

	entry, err := logical.StorageEntryJSON(configPath, cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if err := req.Storage.Put(ctx, entry); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	b.resetClient()
	return nil, nil
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := req.Storage.Delete(ctx, configPath); err != nil {
		return nil, fmt.Errorf("delete config: %w", err)
	}
	b.resetClient()
	return nil, nil
}

// validate returns one message per bad field, each naming the field and
// the fix.
func (c *configEntry) validate() []string {
	var p []string
	if msg := tooLong(map[string]string{
		"client_id": c.ClientID, "client_secret": c.ClientSecret,
		"redirect_uri": c.RedirectURI, "accounts_url": c.AccountsURL, "portal_id": c.PortalID,
		"auth_url": c.AuthURL, "token_url": c.TokenURL, "revoke_url": c.RevokeURL,
	}); msg != "" {
		return []string{msg}
	}
	for field, list := range map[string][]string{
		"scopes": c.Scopes, "extra_redirect_uris": c.ExtraRedirectURIs,
		"allowed_accounts_servers": c.AllowedAccountsServers,
	} {
		max := maxFieldLen["redirect_uri"]
		if field == "scopes" {
			max = maxScopeLen
		}
		if msg := badList(field, list, max); msg != "" {
			p = append(p, msg)
		}
	}
	if len(p) > 0 {
		return p
	}
	if strings.TrimSpace(c.ClientID) == "" {
		p = append(p, "client_id is required: copy it from the API console")
	}
	if c.ClientSecret == "" {
		p = append(p, "client_secret is required: copy it from the API console")
	}
	if c.RedirectURI != "" {
		if err := checkURL(c.RedirectURI, false); err != nil {
			p = append(p, "redirect_uri "+err.Error())
		}
	}
	for _, u := range c.ExtraRedirectURIs {
		if err := checkURL(u, false); err != nil {
			p = append(p, "extra_redirect_uris "+err.Error())
		}
	}
	if err := checkURL(c.AccountsURL, true); err != nil {
		p = append(p, "accounts_url "+err.Error())
	} else if o, err := origin(c.AccountsURL); err != nil || o != strings.TrimRight(strings.ToLower(c.AccountsURL), "/") {
		p = append(p, fmt.Sprintf("accounts_url %s must be an origin, "+
			"scheme://host[:port], without a path, query or fragment", quoteShort(c.AccountsURL)))
	}
	if c.PortalID != "" && !isDigits(c.PortalID) {
		p = append(p, fmt.Sprintf("portal_id %q must be digits only (or empty for "+
			"the standard /oauth/v2 paths)", c.PortalID))
	}
	for field, u := range map[string]string{
		"auth_url": c.AuthURL, "token_url": c.TokenURL, "revoke_url": c.RevokeURL,
	} {
		if u == "" {
			continue
		}
		if err := checkURL(u, true); err != nil {
			p = append(p, field+" "+err.Error())
		}
	}
	for _, o := range c.AllowedAccountsServers {
		norm, err := origin(o)
		switch {
		case err != nil:
			p = append(p, "allowed_accounts_servers "+err.Error())
		case norm != strings.TrimRight(o, "/"):
			p = append(p, fmt.Sprintf("allowed_accounts_servers entry %s must be an "+
				"origin, scheme://host[:port], without a path", quoteShort(o)))
		default:
			if err := checkURL(o, true); err != nil {
				p = append(p, "allowed_accounts_servers "+err.Error())
			}
		}
	}
	if len(c.Scopes) == 0 {
		p = append(p, "scopes must name at least one scope, e.g. ZohoCRM.modules.ALL")
	}
	if c.RequestTimeout < time.Second || c.RequestTimeout > 5*time.Minute {
		p = append(p, "request_timeout must be between 1s and 5m")
	}
	if c.MinTokenTTL < 0 || c.MinTokenTTL > 50*time.Minute {
		p = append(p, "min_token_ttl must be between 0 and 50m (tokens live an hour)")
	}
	if c.LeaseSafetyMargin < 0 || c.LeaseSafetyMargin > 10*time.Minute {
		p = append(p, "lease_safety_margin must be between 0 and 10m")
	}
	if c.MinTokenTTL > 0 && c.LeaseSafetyMargin >= c.MinTokenTTL {
		p = append(p, "lease_safety_margin must be shorter than min_token_ttl, "+
			"or reused tokens would get no lease time")
	}
	if c.MintLimit < 1 || c.MintLimit > 100 {
		p = append(p, "mint_limit must be between 1 and 100 (the accounts server allows 10)")
	}
	if c.MintWindow < time.Minute || c.MintWindow > 24*time.Hour {
		p = append(p, "mint_window must be between 1m and 24h")
	}
	if c.MaxLiveTokens < 1 || c.MaxLiveTokens > 30 {
		p = append(p, "max_live_tokens must be between 1 and 30")
	}
	return p
}

// checkURL checks an absolute http(s) URL. strict endpoints (those the
// client secret or tokens travel to) must be https unless the host is a
// loopback address.
func checkURL(raw string, strict bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%s must be an absolute http(s) URL", quoteShort(raw))
	}
	if u.User != nil {
		return fmt.Errorf("%s must not carry user info", quoteShort(raw))
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return fmt.Errorf("%s must not carry a fragment", quoteShort(raw))
	}
	if strict && u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%s must use https (plain http is accepted only for "+
			"loopback hosts such as the emulator)", quoteShort(raw))
	}
	return nil
}

// origin returns scheme://host[:port] of raw, lower-cased, without a
// default port.
func origin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%s must be an origin such as https://accounts.zoho.eu", quoteShort(raw))
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return strings.ToLower(u.Scheme) + "://" + host, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func dataCenterNames() string {
	names := make([]string, 0, len(accounts.DataCenters))
	for n := range accounts.DataCenters {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func setString(d *framework.FieldData, key string, dst *string) {
	if v, ok := d.GetOk(key); ok {
		*dst = strings.TrimSpace(v.(string))
	}
}

func setStrings(d *framework.FieldData, key string, dst *[]string) {
	if v, ok := d.GetOk(key); ok {
		*dst = trimAll(v.([]string))
	}
}

func setInt(d *framework.FieldData, key string, dst *int) {
	if v, ok := d.GetOk(key); ok {
		*dst = v.(int)
	}
}

func setDuration(d *framework.FieldData, key string, dst *time.Duration) {
	if v, ok := d.GetOk(key); ok {
		*dst = time.Duration(v.(int)) * time.Second
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const operationPrefix = "unity-crm"

const pathConfigHelpSyn = `Configure the OAuth client and the accounts server.`

const pathConfigHelpDesc = `
The OAuth client (a "Server Based Client" from the API console) and where
its accounts server lives. By default the engine talks to Chabad Unity CRM:
accounts_url https://crm.chabad.comeunity.me with portal 10023122998, so the
endpoints are /clientoauth/v2/10023122998/auth, /token and /token/revoke.
Set data_center for a plain Zoho tenant, or override each URL.

client_secret is stored seal-wrapped and never returned. A write reports
every invalid field at once and changes nothing unless all are valid.
`
