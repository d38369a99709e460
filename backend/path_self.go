package backend

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const sourceClientCredentials = "client_credentials"

var soidRegex = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*\.[0-9]+$`)

func pathSelf(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "self/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "self-client-credentials",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: b.pathSelfList,
				},
			},
			HelpSynopsis:    pathSelfListHelpSyn,
			HelpDescription: pathSelfListHelpDesc,
		},
		{
			Pattern: "self/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "self-client-credential",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the Self Client credential.",
					Required:    true,
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Name",
					},
				},
				"scopes": scopesField(),
				"soid": {
					Type: framework.TypeString,
					Description: `Organization the client-credentials grant acts for: ` +
						`"ZohoCRM.<org id>". Required.`,
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Service org id",
					},
				},
			},
			ExistenceCheck: b.pathSelfExistenceCheck,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:                    b.pathSelfRead,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb:   "generate",
						OperationSuffix: "self-client-access-token",
					},
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathSelfWrite,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "write",
					},
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathSelfWrite,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "write",
					},
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathSelfDelete,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs: &framework.DisplayAttributes{
						OperationVerb: "delete",
					},
				},
			},
			HelpSynopsis:    pathSelfHelpSyn,
			HelpDescription: pathSelfHelpDesc,
		},
	}
}

func selfID(name string) string { return selfPrefix + name }

func (b *backend) pathSelfExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	c, err := getCred(ctx, req.Storage, selfID(d.Get("name").(string)))
	if err != nil {
		return false, err
	}
	return c != nil, nil
}

func (b *backend) pathSelfList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, selfPrefix)
	if err != nil {
		return nil, fmt.Errorf("list self client credentials: %w", err)
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathSelfWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if msg := checkName(name); msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	client, cfg, err := b.accountsClient(ctx, req.Storage)
	if err != nil {
		return responseForError(err)
	}
	soid := strings.TrimSpace(d.Get("soid").(string))
	if soid == "" {
		return logical.ErrorResponse(`soid is required: "ZohoCRM.<org id>", the org id ` +
			`from the CRM's Setup > Company Details`), nil
	}
	if len(soid) > maxFieldLen["soid"] || !soidRegex.MatchString(soid) {
		return logical.ErrorResponse(fmt.Sprintf(`soid %s must look like `+
			`"ZohoCRM.<org id>" (digits after the dot)`, quoteShort(soid))), nil
	}
	scopes, msg := requestScopes(d, cfg)
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}

	// Prove the grant works before storing it; the token it gives is the
	// first one handed out.
	id := selfID(name)
	lock := b.credLock(id)
	lock.Lock()
	defer lock.Unlock()

	tok, err := client.ClientCredentials(ctx, scopes, soid)
	if err != nil {
		b.Logger().Warn("client credentials grant failed", "credential", id, "error", err)
		return responseForError(err)
	}

	now := b.now()
	tid := tokenID(tok.AccessToken)
	if len(tok.Scopes) == 0 {
		tok.Scopes = scopes
	}
	cred := &credEntry{
		Scopes:         scopes,
		APIDomain:      tok.APIDomain,
		Source:         sourceClientCredentials,
		Soid:           soid,
		CreatedAt:      now,
		CurrentTokenID: tid,
		LastMint:       now,
		Mints:          []time.Time{now},
		Tokens:         []tokenRef{{ID: tid, ExpiresAt: tok.ExpiresAt()}},
	}
	old, err := getCred(ctx, req.Storage, id)
	if err != nil {
		return nil, err
	}
	if err := putNewToken(ctx, req.Storage, id, tid, newTokenEntry(tok)); err != nil {
		return nil, err
	}
	if err := putCred(ctx, req.Storage, id, cred); err != nil {
		return nil, err
	}
	if old != nil {
		b.retireTokens(ctx, req.Storage, id, tid)
	}
	b.Logger().Info("credential stored", "credential", id, "source", sourceClientCredentials,
		"token_id", tid)

	return &logical.Response{Data: map[string]interface{}{
		"name":       name,
		"source":     sourceClientCredentials,
		"scopes":     nonNil(scopes),
		"soid":       soid,
		"api_domain": tok.APIDomain,
		"created_at": now.UTC().Format(time.RFC3339),
	}}, nil
}

func (b *backend) pathSelfRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	resp, err := b.issueAccessToken(ctx, req.Storage, selfID(d.Get("name").(string)))
	if err != nil {
		return responseForError(err)
	}
	return resp, nil
}

func (b *backend) pathSelfDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := selfID(d.Get("name").(string))
	lock := b.credLock(id)
	lock.Lock()
	defer lock.Unlock()

	cred, err := getCred(ctx, req.Storage, id)
	if err != nil || cred == nil {
		return nil, err
	}
	// With no refresh token to revoke, each live access token is revoked
	// on its own, best effort.
	b.retireTokens(ctx, req.Storage, id, "")
	if err := req.Storage.Delete(ctx, credKey(id)); err != nil {
		return nil, fmt.Errorf("delete credential: %w", err)
	}
	b.Logger().Info("credential deleted", "credential", id)
	return nil, nil
}

// retireTokens revokes upstream, best effort, and forgets every access
// token of a credential except keep.
func (b *backend) retireTokens(ctx context.Context, s logical.Storage, id, keep string) {
	client, cfg, err := b.accountsClient(ctx, s)
	if err != nil {
		return
	}
	ids, err := s.List(ctx, tokenDirKey(id))
	if err != nil {
		b.Logger().Warn("list access tokens", "credential", id, "error", err)
		return
	}
	now := b.now()
	for _, tid := range ids {
		if tid == keep {
			continue
		}
		t, err := getToken(ctx, s, id, tid)
		if err == nil && t != nil && now.Before(t.ExpiresAt) {
			b.revokeBestEffort(ctx, client, t.AccessToken, cfg, "", id)
		}
		if err := s.Delete(ctx, tokenKey(id, tid)); err != nil {
			b.Logger().Warn("forget access token", "credential", id, "error", err)
		}
	}
}

const pathSelfListHelpSyn = `List the Self Client (client-credentials) credentials.`

const pathSelfListHelpDesc = `Lists the names of the credentials stored under self/.`

const pathSelfHelpSyn = `Client-credentials (Self Client) access tokens under leases.`

const pathSelfHelpDesc = `
Write stores a client-credentials grant: scopes and soid ("ZohoCRM.<org id>").
The grant is tried once before it is stored. Read returns an access token
under a lease, with the same sharing, quota guard and revocation as
creds/<name>. Delete revokes the live access tokens (best effort) and
forgets the credential.
`
