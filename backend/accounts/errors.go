package accounts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Kind classifies an answer of the accounts server.
type Kind int

const (
	// KindUnknown is an error code this package does not know.
	KindUnknown Kind = iota
	// KindInvalidCode is a grant code that expired, was already used or
	// never existed.
	KindInvalidCode
	// KindRevoked is a refresh token that was revoked or deleted
	// (invalid_code or invalid_token on refresh).
	KindRevoked
	// KindInvalidClient is a client id unknown at this accounts server,
	// usually because the account lives in another data center.
	KindInvalidClient
	// KindInvalidClientSecret is a wrong client secret.
	KindInvalidClientSecret
	// KindInvalidRedirectURI is a redirect URI that differs from the one
	// registered for the client.
	KindInvalidRedirectURI
	// KindThrottled is the "Access Denied" answer (in any language): too
	// many requests, blocked for a window.
	KindThrottled
	// KindAccessDenied is a refused grant (access_denied).
	KindAccessDenied
	// KindMissingOrgInfo is a client-credentials request without soid.
	KindMissingOrgInfo
	// KindInvalidToken is a revoke call naming a token the server does
	// not know, usually because it is already dead.
	KindInvalidToken
	// KindMalformed is an answer that is neither a token nor a known error.
	KindMalformed
	// KindUnavailable is a server error (5xx) or a failed connection.
	KindUnavailable
	// KindTimeout is a request that ran past its deadline.
	KindTimeout
)

var kindNames = map[Kind]string{
	KindUnknown:             "unknown",
	KindInvalidCode:         "invalid_code",
	KindRevoked:             "revoked",
	KindInvalidClient:       "invalid_client",
	KindInvalidClientSecret: "invalid_client_secret",
	KindInvalidRedirectURI:  "invalid_redirect_uri",
	KindThrottled:           "throttled",
	KindAccessDenied:        "access_denied",
	KindMissingOrgInfo:      "missing_org_info",
	KindInvalidToken:        "invalid_token",
	KindMalformed:           "malformed",
	KindUnavailable:         "unavailable",
	KindTimeout:             "timeout",
}

// String returns a short stable name, fit for logs and status views.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a failed call to the accounts server. Its message never holds a
// token, a code, a secret or the answer's body.
type Error struct {
	// Op is the call: "exchange", "refresh", "client_credentials", "revoke".
	Op string
	// Kind classifies the failure.
	Kind Kind
	// Code is the provider's error code as sent, if any.
	Code string
	// Status is the HTTP status of the answer, 0 when none came.
	Status int

	err error
}

func (e *Error) Error() string {
	msg := "accounts server: " + e.Op + ": " + e.Kind.String()
	if e.Code != "" && e.Code != e.Kind.String() {
		msg += fmt.Sprintf(" (error %q)", e.Code)
	}
	if e.Status != 0 && e.Status != http.StatusOK {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	return msg
}

// Unwrap returns the transport error behind a timeout or a failed
// connection, if any.
func (e *Error) Unwrap() error { return e.err }

// Temporary reports whether the same request may succeed later without an
// operator doing anything: outages, timeouts and garbled answers.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case KindUnavailable, KindTimeout, KindMalformed:
		return true
	}
	return false
}

// KindOf returns the Kind of err, or KindUnknown when err is not an *Error.
func KindOf(err error) Kind {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return KindUnknown
}

// throttleCodes are the error values of the throttle answer seen so far.
// The provider localizes this one code.
var throttleCodes = map[string]bool{
	"access denied":      true,
	"拒绝访问":               true,
	"アクセス拒否":             true,
	"accès refusé":       true,
	"acceso denegado":    true,
	"zugriff verweigert": true,
}

// classifyCode maps the provider's error field for an operation.
func classifyCode(op, code, description string) Kind {
	switch strings.ToLower(strings.TrimSpace(code)) {
	case "invalid_code":
		if op == opRefresh {
			return KindRevoked
		}
		return KindInvalidCode
	case "invalid_token":
		if op == opRefresh {
			return KindRevoked
		}
		return KindInvalidToken
	case "invalid_client":
		return KindInvalidClient
	case "invalid_client_secret":
		return KindInvalidClientSecret
	case "invalid_redirect_uri":
		return KindInvalidRedirectURI
	case "access_denied":
		return KindAccessDenied
	case "missing_org_info":
		return KindMissingOrgInfo
	}
	if throttleCodes[strings.ToLower(strings.TrimSpace(code))] ||
		strings.Contains(strings.ToLower(description), "too many requests") {
		return KindThrottled
	}
	return KindUnknown
}

// classify turns what the oauth2 package or the HTTP client returned into
// an *Error.
func classify(op string, err error) *Error {
	if err == nil {
		return nil
	}

	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}

	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return &Error{Op: op, Kind: classifyCode(op, re.ErrorCode,
				re.ErrorDescription), Code: re.ErrorCode, Status: status}
		}
		if status >= 500 || status == http.StatusTooManyRequests {
			kind := KindUnavailable
			if status == http.StatusTooManyRequests {
				kind = KindThrottled
			}
			return &Error{Op: op, Kind: kind, Status: status}
		}
		return &Error{Op: op, Kind: KindMalformed, Status: status}
	}

	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Op: op, Kind: KindTimeout, err: context.DeadlineExceeded}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Op: op, Kind: KindTimeout, err: ne}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Op: op, Kind: KindUnavailable, err: context.Canceled}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || isTransportError(err) {
		return &Error{Op: op, Kind: KindUnavailable, err: err}
	}

	// What is left is the oauth2 package's own parse failures ("cannot
	// parse json", "server response missing access_token").
	return &Error{Op: op, Kind: KindMalformed}
}

// isTransportError reports connection failures that net/http returns
// without a net.OpError, such as a connection closed before an answer.
func isTransportError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"EOF", "connection reset", "connection refused",
		"server closed", "malformed HTTP"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
