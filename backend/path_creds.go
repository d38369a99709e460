package backend

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
)

const (
	sourceCode         = "authorization_code"
	sourceSelfClient   = "self_client"
	sourceRefreshToken = "refresh_token"
)

func pathCreds(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "creds/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "credentials",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: b.pathCredsList,
				},
			},
			HelpSynopsis:    pathCredsListHelpSyn,
			HelpDescription: pathCredsListHelpDesc,
		},
		{
			Pattern: "creds/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "credential",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the credential.",
					Required:    true,
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Name",
					},
				},
				"code": {
					Type:        framework.TypeString,
					Description: "Grant code from the redirect (with state), or from the API console (with self_client=true).",
					DisplayAttrs: &framework.DisplayAttributes{
						Name:      "Code",
						Sensitive: true,
					},
				},
				"state": {
					Type:        framework.TypeString,
					Description: "State from the redirect; must be one auth-code-url issued for this name.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name:      "State",
						Sensitive: true,
					},
				},
				"callback_url": {
					Type: framework.TypeString,
					Description: "The whole URL the browser was redirected to; code, state, " +
						"location and accounts-server are read from it.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name:      "Callback URL",
						Sensitive: true,
					},
				},
				"accounts_server": {
					Type: framework.TypeString,
					Description: "Accounts server origin that issued the code or refresh " +
						"token (the redirect's accounts-server); must be allowed by config.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Accounts server",
					},
				},
				"self_client": {
					Type:        framework.TypeBool,
					Description: "The code was made in the API console (Self Client): no state, no redirect URI.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Self Client code",
					},
				},
				"refresh_token": {
					Type:        framework.TypeString,
					Description: "Import a refresh token made elsewhere instead of exchanging a code.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name:      "Refresh token",
						Sensitive: true,
					},
				},
				"revoke": {
					Type:        framework.TypeBool,
					Description: "On delete: revoke the refresh token at the accounts server first.",
					Default:     true,
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Revoke upstream",
					},
				},
			},
			ExistenceCheck: b.pathCredsExistenceCheck,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathCredsRead,
					// A read counts a lease in storage.
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb:   "generate",
						OperationSuffix: "access-token",
					},
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathCredsWrite,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "write",
					},
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathCredsWrite,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "write",
					},
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathCredsDelete,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "delete",
					},
				},
			},
			HelpSynopsis:    pathCredsHelpSyn,
			HelpDescription: pathCredsHelpDesc,
		},
	}
}

func (b *backend) pathCredsExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	c, err := getCred(ctx, req.Storage, d.Get("name").(string))
	if err != nil {
		return false, err
	}
	return c != nil, nil
}

func (b *backend) pathCredsList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, credsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	return logical.ListResponse(names), nil
}

// credsInput is a creds/<name> write, checked.
type credsInput struct {
	code           string
	state          string
	selfClient     bool
	refreshToken   string
	accountsServer string
	location       string
}

// parseCredsInput checks that exactly one way of making a credential was
// asked for. It returns a message naming the field when not.
func parseCredsInput(d *framework.FieldData) (*credsInput, string) {
	in := &credsInput{
		code:           strings.TrimSpace(d.Get("code").(string)),
		state:          strings.TrimSpace(d.Get("state").(string)),
		selfClient:     d.Get("self_client").(bool),
		refreshToken:   strings.TrimSpace(d.Get("refresh_token").(string)),
		accountsServer: strings.TrimSpace(d.Get("accounts_server").(string)),
	}
	callback := strings.TrimSpace(d.Get("callback_url").(string))
	if msg := tooLong(map[string]string{
		"code": in.code, "state": in.state, "refresh_token": in.refreshToken,
		"accounts_server": in.accountsServer, "callback_url": callback,
	}); msg != "" {
		return nil, msg
	}

	given := 0
	for _, s := range []string{in.code, callback, in.refreshToken} {
		if s != "" {
			given++
		}
	}
	switch {
	case given == 0:
		return nil, "give one of callback_url, code (with state, or with " +
			"self_client=true) or refresh_token"
	case given > 1:
		return nil, "give only one of callback_url, code or refresh_token"
	}

	if callback != "" {
		if in.state != "" {
			return nil, "state is read from callback_url: leave state out"
		}
		if in.selfClient {
			return nil, "self_client codes have no callback_url: pass code instead"
		}
		if msg := in.parseCallback(callback); msg != "" {
			return nil, msg
		}
	}

	switch {
	case in.refreshToken != "" && (in.state != "" || in.selfClient):
		return nil, "refresh_token takes neither state nor self_client"
	case in.code != "" && in.selfClient && in.state != "":
		return nil, "self_client codes have no state: leave state out"
	case in.code != "" && !in.selfClient && in.state == "":
		return nil, "state is required with code (from the redirect), or set " +
			"self_client=true for a code made in the API console"
	}
	return in, ""
}

// parseCallback reads code, state, location and accounts-server from the
// URL the browser was redirected to.
func (in *credsInput) parseCallback(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "callback_url must be the whole URL the browser was redirected " +
			"to, starting with http:// or https://"
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return fmt.Sprintf("callback_url carries error %q: the user did not "+
			"approve, or too many codes were requested; ask auth-code-url for a "+
			"new URL", e)
	}
	in.code = strings.TrimSpace(q.Get("code"))
	in.state = strings.TrimSpace(q.Get("state"))
	in.location = q.Get("location")
	if as := strings.TrimSpace(q.Get("accounts-server")); as != "" {
		if in.accountsServer != "" && in.accountsServer != as {
			return "accounts_server differs from the accounts-server in callback_url"
		}
		in.accountsServer = as
	}
	if in.code == "" {
		return "callback_url has no code parameter: paste the URL of the page " +
			"the browser landed on after approving"
	}
	if in.state == "" {
		return "callback_url has no state parameter: start from the URL " +
			"auth-code-url returned"
	}
	return ""
}

func (b *backend) pathCredsWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if msg := checkName(name); msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	in, msg := parseCredsInput(d)
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	client, cfg, err := b.accountsClient(ctx, req.Storage)
	if err != nil {
		return responseForError(err)
	}

	// Everything the caller controls is checked before anything is sent
	// upstream: the accounts server, then the state.
	server := ""
	if in.accountsServer != "" {
		server, msg = checkAccountsServer(cfg, in.accountsServer)
		if msg != "" {
			return logical.ErrorResponse(msg), nil
		}
	}
	redirectURI := ""
	if in.code != "" && !in.selfClient {
		st, msg, err := b.consumeState(ctx, req.Storage, in.state, name)
		if err != nil {
			return nil, err
		}
		if msg != "" {
			return logical.ErrorResponse(msg), nil
		}
		redirectURI = st.RedirectURI
	}
	tokenURL, err := endpointAt(cfg.endpoints().TokenURL, server)
	if err != nil {
		return nil, err
	}

	// No lock across the exchange: a code works once, and of two writes
	// racing for one name the later store wins and retires the other.
	// Obtain the refresh token and a first access token.
	var tok *accounts.Token
	source := sourceRefreshToken
	switch {
	case in.refreshToken != "":
		tok, err = client.Refresh(ctx, in.refreshToken, tokenURL)
		if err == nil {
			tok.RefreshToken = in.refreshToken
		}
	default:
		source = sourceCode
		if in.selfClient {
			source = sourceSelfClient
		}
		tok, err = client.Exchange(ctx, in.code, redirectURI, tokenURL)
	}
	if err != nil {
		b.Logger().Warn("credential write failed upstream", "credential", name,
			"error", err)
		if accounts.KindOf(err) == accounts.KindRevoked {
			return logical.ErrorResponse("the accounts server rejected refresh_token " +
				"(revoked, deleted, or from another data center: set accounts_server)"), nil
		}
		return responseForError(err)
	}
	if tok.RefreshToken == "" {
		b.revokeBestEffort(ctx, client, tok.AccessToken, cfg, server, name)
		return logical.ErrorResponse("the accounts server issued no refresh token: " +
			"authorize with access_type=offline and prompt=consent (the auth-code-url " +
			"defaults); a user who consented before gets one only with prompt=consent"), nil
	}

	return b.storeCred(ctx, req.Storage, client, cfg, name, source, server, tok, in.location)
}

// storeCred keeps a new refresh token, guarded by a WAL entry so a token
// obtained but not stored is revoked, then retires the one it replaces.
// Only the storage work runs under the credential's lock.
func (b *backend) storeCred(ctx context.Context, s logical.Storage, client *accounts.Client,
	cfg *configEntry, name, source, server string, tok *accounts.Token, location string,
) (*logical.Response, error) {
	now := b.now()
	id := tokenID(tok.AccessToken)
	cred := &credEntry{
		RefreshToken:   tok.RefreshToken,
		Scopes:         tok.Scopes,
		APIDomain:      tok.APIDomain,
		AccountsServer: server,
		Source:         source,
		CreatedAt:      now,
		CurrentTokenID: id,
		LastMint:       now,
		// The exchange (or the import's proving refresh) was this
		// refresh token's first mint.
		Mints:  []time.Time{now},
		Tokens: []tokenRef{{ID: id, ExpiresAt: tok.ExpiresAt()}},
	}

	lock := b.credLock(name)
	lock.Lock()
	old, err := b.keepCred(ctx, s, name, cred, newTokenEntry(tok))
	lock.Unlock()
	if err != nil {
		// A WAL entry left behind revokes it even if this attempt fails.
		b.revokeBestEffort(ctx, client, tok.RefreshToken, cfg, server, name)
		return nil, err
	}

	resp := &logical.Response{Data: map[string]interface{}{
		"name":       name,
		"source":     source,
		"scopes":     nonNil(tok.Scopes),
		"api_domain": tok.APIDomain,
		"created_at": now.UTC().Format(time.RFC3339),
	}}
	if server != "" {
		resp.Data["accounts_server"] = server
	}
	if location != "" {
		resp.Data["location"] = location
	}

	// The provider keeps 20 refresh tokens per user: retire the old one.
	if old != nil && old.RefreshToken != tok.RefreshToken {
		if err := b.revokeUpstream(ctx, client, old.RefreshToken, cfg, old.AccountsServer); err != nil {
			b.Logger().Warn("revoke replaced refresh token", "credential", name, "error", err)
			resp.AddWarning("the replaced refresh token could not be revoked at the " +
				"accounts server; revoke it in the API console")
		}
	}
	b.Logger().Info("credential stored", "credential", name, "source", source,
		"token_id", id)
	return resp, nil
}

// keepCred stores a credential and its first access token under a WAL
// entry, and forgets the access tokens of the one it replaces, which it
// returns. Called with the credential's lock held.
func (b *backend) keepCred(ctx context.Context, s logical.Storage, name string,
	cred *credEntry, first *tokenEntry,
) (*credEntry, error) {
	walID, err := framework.PutWAL(ctx, s, walKindRefreshToken, &walRefreshToken{
		Name:           name,
		RefreshToken:   cred.RefreshToken,
		AccountsServer: cred.AccountsServer,
		CreatedAt:      cred.CreatedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("write ahead log: %w", err)
	}

	old, err := getCred(ctx, s, name)
	if err != nil {
		return nil, err
	}
	// The first access token is kept for the first read: the exchange
	// already counted as a mint.
	if err := putNewToken(ctx, s, name, cred.CurrentTokenID, first); err != nil {
		return nil, err
	}
	if err := putCred(ctx, s, name, cred); err != nil {
		return nil, err
	}
	if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		b.Logger().Warn("delete write ahead log entry", "credential", name, "error", err)
	}

	if old != nil {
		if err := deleteTokens(ctx, s, name, cred.CurrentTokenID); err != nil {
			b.Logger().Warn("forget replaced access tokens", "credential", name, "error", err)
		}
	}
	return old, nil
}

func newTokenEntry(tok *accounts.Token) *tokenEntry {
	return &tokenEntry{
		AccessToken: tok.AccessToken,
		TokenType:   tok.TokenType,
		APIDomain:   tok.APIDomain,
		Scopes:      tok.Scopes,
		IssuedAt:    tok.IssuedAt,
		ExpiresAt:   tok.ExpiresAt(),
	}
}

func (b *backend) pathCredsDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	// TODO(delete lock across upstream): the refresh token is revoked under
	// the credential's lock, so reads of it wait for that call.
	lock := b.credLock(name)
	lock.Lock()
	defer lock.Unlock()

	cred, err := getCred(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, nil
	}

	// Revoke first: a credential forgotten but live upstream would count
	// against the user's 20 refresh tokens and stay usable.
	if d.Get("revoke").(bool) {
		client, cfg, err := b.accountsClient(ctx, req.Storage)
		if err != nil {
			return responseForError(err)
		}
		err = b.revokeUpstream(ctx, client, cred.RefreshToken, cfg, cred.AccountsServer)
		if err != nil {
			resp, rerr := responseForError(err)
			if resp != nil {
				resp.AddWarning("nothing was deleted; pass revoke=false to forget " +
					"the credential without revoking it")
			}
			return resp, rerr
		}
	}

	if err := deleteTokens(ctx, req.Storage, name, ""); err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, credKey(name)); err != nil {
		return nil, fmt.Errorf("delete credential: %w", err)
	}
	b.Logger().Info("credential deleted", "credential", name)
	return nil, nil
}

// revokeUpstream revokes a token at the accounts server that issued it. A
// token the server no longer knows is already gone: success.
func (b *backend) revokeUpstream(ctx context.Context, client *accounts.Client, token string,
	cfg *configEntry, server string,
) error {
	revokeURL, err := endpointAt(cfg.endpoints().RevokeURL, server)
	if err != nil {
		return err
	}
	err = client.Revoke(ctx, token, revokeURL)
	if accounts.KindOf(err) == accounts.KindInvalidToken {
		return nil
	}
	return err
}

func (b *backend) revokeBestEffort(ctx context.Context, client *accounts.Client, token string,
	cfg *configEntry, server, name string,
) {
	if err := b.revokeUpstream(ctx, client, token, cfg, server); err != nil {
		b.Logger().Warn("revoke at accounts server failed", "credential", name,
			"error", err)
	}
}

// checkAccountsServer returns the normalized origin when raw names an
// allowed accounts server, or a message for the caller.
func checkAccountsServer(cfg *configEntry, raw string) (string, string) {
	o, err := origin(raw)
	if err != nil {
		return "", "accounts_server " + err.Error()
	}
	for _, allowed := range cfg.allowedOrigins() {
		if a, err := origin(allowed); err == nil && a == o {
			return o, ""
		}
	}
	return "", fmt.Sprintf("accounts server %q is not in allowed_accounts_servers "+
		"(%s); nothing was sent to it. If the account really lives in that data "+
		"center, add its origin to config allowed_accounts_servers", o,
		strings.Join(cfg.allowedOrigins(), ", "))
}

// endpointAt moves a configured endpoint to another accounts server origin;
// an empty origin keeps it.
func endpointAt(endpoint, server string) (string, error) {
	if server == "" {
		return endpoint, nil
	}
	return accounts.AtOrigin(endpoint, server)
}

func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	resp, err := b.issueAccessToken(ctx, req.Storage, name)
	if err != nil {
		return responseForError(err)
	}
	return resp, nil
}

func notFound(id string) error {
	return logical.CodedError(http.StatusNotFound, fmt.Sprintf(
		"credential %q does not exist: write %s first", id, credPath(id)))
}

const pathCredsListHelpSyn = `List the stored credentials.`

const pathCredsListHelpDesc = `Lists the names of the credentials stored under creds/.`

const pathCredsHelpSyn = `Store a credential, read a leased access token, or revoke it.`

const pathCredsHelpDesc = `
Write stores a credential in one of three ways:

  callback_url=<URL>          the whole URL the browser was redirected to
  code=<code> state=<state>   the same, in pieces
  code=<code> self_client=true  a code made in the API console
  refresh_token=<token>       a refresh token made elsewhere

The refresh token is kept in Vault and never returned. Overwriting a
credential revokes the refresh token it replaces.

Read returns an access token under a lease that never outlives the token.
Reads share the current token while it has at least min_token_ttl left.
When the last lease on a token ends, the token is revoked upstream.

Delete revokes the refresh token at the accounts server, then forgets it
(revoke=false skips the upstream call).
`
