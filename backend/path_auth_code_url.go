package backend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
)

const (
	statePrefix     = "state/"
	defaultStateTTL = 10 * time.Minute
	maxStateTTL     = time.Hour
)

// stateEntry is what a grant-code URL was issued for, stored under the
// hash of its state so the state itself never rests in storage.
type stateEntry struct {
	Name        string    `json:"name"`
	RedirectURI string    `json:"redirect_uri"`
	Scopes      []string  `json:"scopes"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func stateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return statePrefix + hex.EncodeToString(sum[:])
}

func pathAuthCodeURL(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "auth-code-url",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Credential the granted code will be stored as. Required.",
				Required:    true,
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Name",
				},
			},
			"scopes": scopesField(),
			"access_type": {
				Type:        framework.TypeString,
				Description: `"offline" (a refresh token is issued) or "online".`,
				Default:     "offline",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Access type",
				},
			},
			"prompt": {
				Type: framework.TypeString,
				Description: `"consent" makes the server issue a refresh token even ` +
					`for a user who consented before; "none" leaves it out.`,
				Default: "consent",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Prompt",
				},
			},
			"redirect_uri": {
				Type: framework.TypeString,
				Description: "The configured redirect_uri (default) or one of " +
					"extra_redirect_uris.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Redirect URI",
				},
			},
			"ttl": {
				Type:        framework.TypeDurationSecond,
				Description: "How long the state is accepted. Default 10m, at most 1h.",
				Default:     int(defaultStateTTL.Seconds()),
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "State TTL",
				},
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathAuthCodeURLWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "generate",
					OperationSuffix: "auth-code-url",
				},
			},
		},
		HelpSynopsis:    pathAuthCodeURLHelpSyn,
		HelpDescription: pathAuthCodeURLHelpDesc,
	}
}

func (b *backend) pathAuthCodeURLWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	client, cfg, err := b.accountsClient(ctx, req.Storage)
	if err != nil {
		return responseForError(err)
	}

	name := strings.TrimSpace(d.Get("name").(string))
	if msg := checkName(name); msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	scopes, msg := requestScopes(d, cfg)
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	accessType := d.Get("access_type").(string)
	if accessType != "offline" && accessType != "online" {
		return logical.ErrorResponse(`access_type must be "offline" or "online"`), nil
	}
	prompt := d.Get("prompt").(string)
	switch prompt {
	case "consent":
	case "none", "":
		prompt = ""
	default:
		return logical.ErrorResponse(`prompt must be "consent" or "none"`), nil
	}
	redirectURI := cfg.RedirectURI
	if v, ok := d.GetOk("redirect_uri"); ok {
		redirectURI = strings.TrimSpace(v.(string))
	}
	if redirectURI == "" {
		return logical.ErrorResponse("redirect_uri is not configured: write " +
			"config redirect_uri=<the URI registered in the API console>"), nil
	}
	if !cfg.redirectAllowed(redirectURI) {
		return logical.ErrorResponse(fmt.Sprintf("redirect_uri %q is neither the "+
			"configured redirect_uri nor one of extra_redirect_uris", redirectURI)), nil
	}
	ttl := time.Duration(d.Get("ttl").(int)) * time.Second
	if ttl <= 0 || ttl > maxStateTTL {
		return logical.ErrorResponse("ttl must be between 1s and 1h"), nil
	}

	// The state ties the redirect back to this request: random, stored
	// only as a hash, single-use and short-lived.
	state, err := randomState()
	if err != nil {
		return nil, err
	}
	entry, err := logical.StorageEntryJSON(stateKey(state), &stateEntry{
		Name:        name,
		RedirectURI: redirectURI,
		Scopes:      scopes,
		ExpiresAt:   b.now().Add(ttl),
	})
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	if err := req.Storage.Put(ctx, entry); err != nil {
		return nil, fmt.Errorf("store state: %w", err)
	}

	u := client.AuthCodeURL(accounts.AuthCodeRequest{
		RedirectURI: redirectURI,
		Scopes:      scopes,
		State:       state,
		AccessType:  accessType,
		Prompt:      prompt,
	})
	resp := &logical.Response{
		Data: map[string]interface{}{
			"url":        u,
			"state":      state,
			"expires_in": int64(ttl.Seconds()),
		},
	}
	if accessType == "online" || prompt == "" {
		resp.AddWarning("without access_type=offline and prompt=consent the " +
			"accounts server may issue no refresh token, and creds/" + name +
			" will refuse the code")
	}
	return resp, nil
}

func randomState() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// consumeState looks a state up and deletes it, so it works once. It
// returns a message for the caller when the state is unknown, used,
// expired or was issued for another credential.
func (b *backend) consumeState(ctx context.Context, s logical.Storage, state, name string) (*stateEntry, string, error) {
	key := stateKey(state)
	lock := b.credLock(key)
	lock.Lock()
	defer lock.Unlock()

	raw, err := s.Get(ctx, key)
	if err != nil {
		return nil, "", fmt.Errorf("read state: %w", err)
	}
	if raw == nil {
		return nil, "state is unknown or was already used: ask auth-code-url " +
			"for a new URL", nil
	}
	st := new(stateEntry)
	if err := raw.DecodeJSON(st); err != nil {
		return nil, "", fmt.Errorf("decode state: %w", err)
	}
	if st.Name != name {
		// Leave it for the credential it was issued for.
		return nil, fmt.Sprintf("state was issued for credential %q, not %q",
			st.Name, name), nil
	}
	if !b.now().Before(st.ExpiresAt) {
		// The periodic sweep removes it.
		return nil, "state has expired: ask auth-code-url for a new URL", nil
	}
	if err := s.Delete(ctx, key); err != nil {
		return nil, "", fmt.Errorf("delete state: %w", err)
	}
	return st, "", nil
}

// sweepStates deletes expired states.
func (b *backend) sweepStates(ctx context.Context, s logical.Storage, now time.Time) error {
	keys, err := s.List(ctx, statePrefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		raw, err := s.Get(ctx, statePrefix+k)
		if err != nil {
			return err
		}
		if raw == nil {
			continue
		}
		st := new(stateEntry)
		if err := raw.DecodeJSON(st); err != nil || !now.Before(st.ExpiresAt) {
			if err := s.Delete(ctx, statePrefix+k); err != nil {
				return err
			}
		}
	}
	return nil
}

// scopesField is the optional scopes field of a request.
func scopesField() *framework.FieldSchema {
	return &framework.FieldSchema{
		Type:         framework.TypeCommaStringSlice,
		Description:  "Scopes to ask for. Default the configured scopes.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Scopes"},
	}
}

// requestScopes returns the scopes a request names, or the configured
// ones, or a message for the caller.
func requestScopes(d *framework.FieldData, cfg *configEntry) ([]string, string) {
	v, ok := d.GetOk("scopes")
	if !ok {
		return cfg.Scopes, ""
	}
	scopes := trimAll(v.([]string))
	if msg := badList("scopes", scopes, maxScopeLen); msg != "" {
		return nil, msg
	}
	if len(scopes) == 0 {
		return nil, "scopes must name at least one scope, or be left out for the " +
			"configured ones"
	}
	return scopes, ""
}

func trimAll(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

const pathAuthCodeURLHelpSyn = `Build the URL a CRM user opens to grant a code.`

const pathAuthCodeURLHelpDesc = `
Returns the authorization URL for the named credential, with a random state
that is stored (hashed), expires after ttl and works once. Send the user to
url; after they approve, the accounts server redirects to redirect_uri with
code, state, location and accounts-server. Write that whole URL to
creds/<name> as callback_url (or code and state) within two minutes: codes
expire quickly and work once.

access_type=offline and prompt=consent (the defaults) make sure a refresh
token is issued.
`
