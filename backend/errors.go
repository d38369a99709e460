package backend

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts"
)

// errNeedsReauth is a credential whose refresh token the accounts server
// no longer knows.
type errNeedsReauth struct{ name string }

func (e errNeedsReauth) Error() string {
	return fmt.Sprintf("credential %q needs re-authorization: the accounts server "+
		"revoked or deleted its refresh token (revoked in the API console, a password "+
		"change, or more than 20 refresh tokens for the user); write "+
		"auth-code-url name=%s, have the user approve, then write creds/%s again",
		e.name, e.name, e.name)
}

// responseForError turns an error into what the caller sees: a 4xx
// response for what the caller or operator can fix, a coded error for
// upstream trouble, and the error itself (500) for internal failures.
// This is the one place provider errors become messages.
func responseForError(err error) (*logical.Response, error) {
	if err == nil {
		return nil, nil
	}
	if errors.Is(err, errNotConfigured) {
		return logical.ErrorResponse(err.Error()), nil
	}
	var reauth errNeedsReauth
	if errors.As(err, &reauth) {
		return logical.ErrorResponse(reauth.Error()), nil
	}
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return nil, err
	}

	var ae *accounts.Error
	if !errors.As(err, &ae) {
		return nil, err
	}
	switch ae.Kind {
	case accounts.KindInvalidCode:
		return logical.ErrorResponse("the accounts server rejected the grant code " +
			"(invalid_code): codes live about two minutes and work once; ask " +
			"auth-code-url for a new URL and write the new code promptly"), nil
	case accounts.KindRevoked:
		return logical.ErrorResponse("the accounts server rejected the refresh " +
			"token (revoked or deleted): authorize the user again"), nil
	case accounts.KindInvalidClient:
		return logical.ErrorResponse("the accounts server does not know client_id " +
			"(invalid_client): the account may live in another data center; check " +
			"config data_center or accounts_url, or pass the whole callback_url so " +
			"its accounts-server is used"), nil
	case accounts.KindInvalidClientSecret:
		return logical.ErrorResponse("the accounts server rejected client_secret " +
			"(invalid_client_secret): copy it again from the API console (it may " +
			"differ per data center) and write config client_secret=..."), nil
	case accounts.KindInvalidRedirectURI:
		return logical.ErrorResponse("the accounts server rejected the redirect " +
			"URI (invalid_redirect_uri): config redirect_uri must match the one " +
			"registered in the API console exactly, trailing slash and host included"), nil
	case accounts.KindAccessDenied:
		return logical.ErrorResponse("the accounts server denied access " +
			"(access_denied): the user refused consent, or too many grant codes " +
			"were requested; wait ten minutes and try again"), nil
	case accounts.KindMissingOrgInfo:
		return logical.ErrorResponse("the accounts server needs the organization " +
			"(missing_org_info): set soid to ZohoCRM.<org id>"), nil
	case accounts.KindThrottled:
		return nil, logical.CodedError(http.StatusTooManyRequests,
			"the accounts server is throttling this client (Access Denied): "+
				"it blocks further requests for about ten minutes; retry later")
	case accounts.KindTimeout:
		return nil, logical.CodedError(http.StatusGatewayTimeout,
			"the accounts server did not answer in time (request_timeout); retry later")
	case accounts.KindUnavailable:
		return nil, logical.CodedError(http.StatusBadGateway,
			"the accounts server is unavailable ("+ae.Error()+"); retry later")
	case accounts.KindMalformed:
		return nil, logical.CodedError(http.StatusBadGateway,
			"the accounts server sent an answer that is neither a token nor a known "+
				"error; retry later")
	}
	return nil, logical.CodedError(http.StatusBadGateway,
		"the accounts server refused the request: "+ae.Error())
}
