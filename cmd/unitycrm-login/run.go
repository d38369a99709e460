package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"
)

// login is one run: the options, Vault, and the person at the terminal.
type login struct {
	o      options
	vault  *api.Client
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	open   func(string) error
}

// run is the whole command. It returns the exit status: 0 when the
// credential is stored, 1 on failure, 2 on bad usage. open opens a URL in
// a browser.
func run(ctx context.Context, args []string, stdin io.Reader,
	stdout, stderr io.Writer, open func(string) error) int {
	o, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	}

	vc, err := newVaultClient()
	if err != nil {
		fmt.Fprintln(stderr, "unitycrm-login: "+err.Error())
		return 1
	}

	l := &login{o: o, vault: vc, stdin: stdin, stdout: stdout,
		stderr: stderr, open: open}
	if o.paste {
		err = l.pasteMode(ctx)
	} else {
		err = l.browserMode(ctx)
	}
	if err != nil {
		fmt.Fprintln(stderr, "unitycrm-login: "+err.Error())
		return 1
	}
	return 0
}

// browserMode receives the redirect on a loopback listener.
func (l *login) browserMode(ctx context.Context) error {
	redirect, err := url.Parse(l.o.redirectURI)
	if err != nil {
		return fmt.Errorf("-redirect-uri: %w", err)
	}

	// Bind first, so a busy port fails before a state is issued.
	ln, err := listenLoopback(l.o.listen)
	if err != nil {
		return err
	}
	auth, err := l.authURL(ctx, l.o.redirectURI)
	if err != nil {
		ln.Close()
		return fmt.Errorf("%w%s", err, l.notAllowedHint(err))
	}
	srv := startCallbackServer(ln, redirect, auth.state)
	defer srv.stop()

	l.showURL(auth.url)
	fmt.Fprintf(l.stderr, "Waiting up to %s for the browser to come back to %s\n",
		l.o.timeout, l.o.redirectURI)

	wctx, cancel := context.WithTimeout(ctx, l.o.timeout)
	defer cancel()
	a, err := srv.wait(wctx)
	if err != nil {
		return l.waitError(ctx, "no redirect reached "+l.o.redirectURI)
	}

	s, err := l.finish(ctx, a.url, auth.state)
	if err != nil {
		a.reply <- page{http.StatusBadRequest, "Authorization failed",
			"The credential was not stored: " + pageMessage(err)}
		return err
	}
	a.reply <- page{http.StatusOK, "Authorized",
		"Authorized. You can close this tab."}
	l.printResult(s)
	return nil
}

// pasteMode reads the redirected URL from stdin.
func (l *login) pasteMode(ctx context.Context) error {
	auth, err := l.authURL(ctx, l.o.redirectURI)
	if err != nil {
		return err
	}

	l.showURL(auth.url)
	fmt.Fprint(l.stderr, pastePrompt)

	wctx, cancel := context.WithTimeout(ctx, l.o.timeout)
	defer cancel()
	line, err := readLine(wctx, l.stdin)
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return l.waitError(ctx, "no URL was pasted")
	case err != nil:
		return err
	}

	s, err := l.finish(ctx, line, auth.state)
	if err != nil {
		return err
	}
	l.printResult(s)
	return nil
}

const pastePrompt = `After approving, copy the whole address of the page the browser lands
on (for example https://oauth.pstmn.io/v1/callback?code=...) and paste
it here within two minutes, while the grant code is valid:
`

// authURL asks the engine for the URL and prints its warnings.
func (l *login) authURL(ctx context.Context, redirectURI string) (*authRequest, error) {
	auth, warnings, err := requestAuthURL(ctx, l.vault, l.o, redirectURI)
	if err != nil {
		return nil, err
	}
	l.printWarnings(warnings)
	return auth, nil
}

// showURL prints the authorization URL and, unless told not to, opens it.
// The URL carries the state, which is worth nothing without the code the
// accounts server sends only to the registered redirect URI.
func (l *login) showURL(u string) {
	fmt.Fprintf(l.stderr, "Open this URL in a browser and approve access "+
		"as the CRM user:\n\n    %s\n\n", u)
	if l.o.noBrowser {
		return
	}
	if err := l.open(u); err != nil {
		fmt.Fprintf(l.stderr, "Could not open a browser (%v): open the URL "+
			"above yourself.\n\n", err)
	}
}

// finish checks the redirect and writes it to creds/<name>.
func (l *login) finish(ctx context.Context, callbackURL, state string) (*api.Secret, error) {
	if err := checkRedirect(callbackURL, state); err != nil {
		return nil, err
	}
	s, err := storeCredential(ctx, l.vault, l.o, callbackURL)
	if err != nil {
		return nil, err
	}
	l.printWarnings(s.Warnings)
	return s, nil
}

// waitError explains a wait that ended without an answer.
func (l *login) waitError(ctx context.Context, what string) error {
	if ctx.Err() != nil {
		return errors.New("interrupted: nothing was stored")
	}
	if l.o.paste {
		return fmt.Errorf("%s within %s: nothing was stored; run again and "+
			"paste the address within the time", what, l.o.timeout)
	}
	return fmt.Errorf("%s within %s: nothing was stored.\n\n%s",
		what, l.o.timeout, l.timeoutHint())
}

// timeoutHint says what a loopback redirect needs to arrive.
func (l *login) timeoutHint() string {
	return fmt.Sprintf("Check that:\n"+
		"  - the user finished approving the URL above in the browser;\n"+
		"  - %[1]s is listed in %[2]s/config\n"+
		"    extra_redirect_uris (vault read %[2]s/config shows them);\n"+
		"  - it is registered for the client in the API console, exactly:\n"+
		"    otherwise the accounts server shows an error page instead of\n"+
		"    redirecting.\n"+
		"Or use -paste with the configured redirect_uri.",
		l.o.redirectURI, l.o.mount)
}

// notAllowedHint says how to allow the loopback redirect URI, when Vault
// refused auth-code-url over it.
func (l *login) notAllowedHint(err error) string {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest ||
		!strings.Contains(strings.Join(re.Errors, " "), "redirect_uri") {
		return ""
	}
	return fmt.Sprintf("\n\nThe loopback redirect URI must be in config "+
		"extra_redirect_uris\n(the list is replaced: name every URI to keep):\n\n"+
		"    vault write %s/config extra_redirect_uris=%s\n\n"+
		"and registered for the client in the API console. Or use -paste.",
		l.o.mount, l.o.redirectURI)
}

// pageMessage is err as a browser may show it.
func pageMessage(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return vaultMessage(err)
	}
	return err.Error()
}
