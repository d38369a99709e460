// Package accountstest emulates the provider's accounts server (Zoho OAuth 2.0
// as white-labelled for the Chabad Unity CRM "Vertical Solutions" portal)
// together with a tiny CRM API, in process, much as net/http/httptest
// emulates a web server.
//
// The emulator speaks the dialect described in ZOHO.md: errors inside HTTP
// 200 answers, one-time grant codes that expire, refresh tokens only for
// offline access on first consent or with prompt=consent, refresh answers
// without a refresh token, throttling of grant codes and of access tokens
// per refresh token, the live-token and refresh-token limits, revocation,
// and the location and accounts-server parameters of the redirect.
//
// Every endpoint is served under both path shapes:
//
//	/oauth/v2/auth                          plain Zoho
//	/clientoauth/v2/{portal}/auth           Vertical Solutions portal
//
// and likewise .../auth/approve (the consent form), .../token and
// .../token/revoke; /clientoauth/v2/{portal}/auth/token/revoke is served too.
// The CRM API answers GET /crm/{version}/org and
// GET /crm/{version}/users?type=CurrentUser for a live access token sent as
// "Authorization: Zoho-oauthtoken <token>" or "Bearer <token>". GET /callback
// shows the URL it was called with, for a person to copy, and GET / lists the
// endpoints.
//
// Other processes (scripts, end-to-end tests) drive the emulator through
// control endpoints:
//
//	GET  /_emulator/counts            Counts as JSON
//	GET  /_emulator/faults            the injected Faults as JSON
//	PUT  /_emulator/faults            replace them, e.g. {"latency":"3s"}
//	GET  /_emulator/token?token=T     {"live":true} or {"live":false}
//	POST /_emulator/approve           form url, user: {"callback_url":"..."}
//	POST /_emulator/self-client-code  form client_id, scope: {"code":"..."}
//
// A refused control request answers HTTP 400 with {"error":"..."}.
//
// Time-dependent behaviour follows Options.Now, so tests move a fake clock
// instead of sleeping; only Faults.Latency sleeps for real. An Emulator is
// safe for concurrent use. It never logs a token, code or secret: they appear
// in logs only as short SHA-256 fingerprints.
//
// A typical test:
//
//	srv := accountstest.NewServer(accountstest.Options{AutoApprove: true})
//	defer srv.Close()
//	srv.AddClient(accountstest.Client{
//		ID:           "1000.CLIENT",
//		Secret:       "secret",
//		RedirectURIs: []string{srv.URL + "/callback"},
//	})
//	callback, err := srv.Approve(authURL, "someone@example.org")
package accountstest
