package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxTimeout keeps the wait inside the longest state life the engine
// grants (one hour), with a minute to spare for the write.
const maxTimeout = 59 * time.Minute

// errUsage reports a bad command line; the message was already printed.
var errUsage = errors.New("usage")

// nameRegex is the engine's rule for credential names; checking it here
// keeps the name from changing the request path.
var nameRegex = regexp.MustCompile(
	`^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$`)

// options are the parsed flags.
type options struct {
	mount       string
	name        string
	listen      string
	redirectURI string
	scopes      string
	timeout     time.Duration
	noBrowser   bool
	paste       bool
}

const usageHead = `Usage: unitycrm-login -name <credential> [flags]

Authorizes a CRM user and stores the result as <mount>/creds/<name> in the
Unity CRM secrets engine. Vault is reached as the vault CLI reaches it:
VAULT_ADDR, VAULT_TOKEN (else ~/.vault-token), VAULT_NAMESPACE, VAULT_CACERT.

Browser mode (default): listens on -listen for the redirect, opens the
authorization URL in a browser and stores the credential once the user
approves. The redirect URI, http://<listen>/callback unless -redirect-uri
is given, must be in config extra_redirect_uris and registered for the
client in the API console.

Paste mode (-paste): asks for a URL with the configured redirect_uri (or
-redirect-uri), prints it, and reads from stdin the whole address the
browser lands on after approval (e.g. https://oauth.pstmn.io/v1/callback?...).

Exit status: 0 stored, 1 failed, 2 bad usage.

Flags:
`

// parseFlags reads and checks the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("unitycrm-login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.mount, "mount", "unitycrm",
		"`path` the secrets engine is mounted at")
	fs.StringVar(&o.name, "name", "", "credential `name` to store (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8250",
		"loopback `address` to receive the redirect on (browser mode)")
	fs.StringVar(&o.redirectURI, "redirect-uri", "",
		"redirect `URI` to ask for (default http://<listen>/callback, or "+
			"the configured redirect_uri with -paste)")
	fs.StringVar(&o.scopes, "scopes", "",
		"comma-separated `scopes` (default the configured ones)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute,
		"how long to wait for the browser or the paste")
	fs.BoolVar(&o.noBrowser, "no-browser", false,
		"print the URL without opening a browser")
	fs.BoolVar(&o.paste, "paste", false,
		"paste mode: read the redirected URL from stdin")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if msg := o.check(fs.Args()); msg != "" {
		fmt.Fprintln(stderr, "unitycrm-login: "+msg)
		fmt.Fprintln(stderr, "Run unitycrm-login -h for usage.")
		return o, errUsage
	}
	o.mount = strings.Trim(o.mount, "/")
	return o, nil
}

// check returns what is wrong with the options, or "".
func (o *options) check(rest []string) string {
	switch {
	case len(rest) > 0:
		return fmt.Sprintf("unexpected arguments %q", rest)
	case o.name == "":
		return "-name is required: the credential to store, as in creds/<name>"
	case !nameRegex.MatchString(o.name):
		return fmt.Sprintf("-name %q is invalid: use 1 to 128 letters, digits, "+
			"'.', '_' or '-', starting and ending with a letter or digit", o.name)
	case strings.Trim(o.mount, "/") == "":
		return "-mount must name the path the engine is mounted at"
	case o.timeout <= 0 || o.timeout > maxTimeout:
		return "-timeout must be more than 0 and at most 59m"
	case o.paste:
		return ""
	}
	if msg := checkListen(o.listen); msg != "" {
		return msg
	}
	if o.redirectURI == "" {
		o.redirectURI = "http://" + o.listen + "/callback"
		return ""
	}
	return checkLoopbackRedirect(o.redirectURI, o.listen)
}

// checkListen refuses any address but a loopback one with a fixed port:
// the redirect carries a grant code, and its URI is registered ahead.
func checkListen(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("-listen %q must be host:port, e.g. 127.0.0.1:8250", addr)
	}
	if !isLoopbackHost(host) {
		return fmt.Sprintf("-listen %q is not a loopback address: use "+
			"127.0.0.1, [::1] or localhost, so no one else can receive the code",
			addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("-listen %q needs a fixed port from 1 to 65535: "+
			"the redirect URI is registered with it", addr)
	}
	return ""
}

// checkLoopbackRedirect checks a browser-mode -redirect-uri: plain http
// to a loopback host on the port the listener binds.
func checkLoopbackRedirect(raw, listen string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Sprintf("-redirect-uri %q must be an http:// URL on a "+
			"loopback host in browser mode (use -paste for other URIs)", raw)
	}
	_, port, _ := net.SplitHostPort(listen)
	if !isLoopbackHost(u.Hostname()) || u.Port() != port {
		return fmt.Sprintf("-redirect-uri %q must name a loopback host and "+
			"the port of -listen (%s)", raw, listen)
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Sprintf("-redirect-uri %q must carry no fragment or user info", raw)
	}
	return ""
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
