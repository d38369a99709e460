// Command unitycrm-accounts-emulator serves an emulation of the Chabad Unity
// CRM accounts server (Zoho OAuth 2.0 as white-labelled for a Vertical
// Solutions portal) and a tiny CRM API on a loopback address, for local
// development and CI. See package accountstest for what it emulates.
//
// Usage:
//
//	unitycrm-accounts-emulator [flags]
//
// It registers one client, prints
//
//	accounts emulator listening on http://127.0.0.1:8085
//
// followed by its endpoints, and serves until SIGINT or SIGTERM, then exits
// 0. With -listen 127.0.0.1:0 it picks a free port; -ready-file gives
// scripts the base URL once it is listening. It logs one line per request
// outcome to stderr (tokens, codes and secrets only as fingerprints) unless
// -quiet is set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend/accounts/accountstest"
)

// Defaults of the registered client.
const (
	defaultClientID     = "1000.EMULATORCLIENT0000000000000000"
	defaultClientSecret = "emulator-client-secret"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt,
		syscall.SIGTERM)
	defer stop()

	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "unitycrm-accounts-emulator:", err)
		os.Exit(1)
	}
}

// errUsage reports bad flags, which the flag package has already printed.
var errUsage = errors.New("usage")

// listFlag is a flag that may be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// config holds the parsed flags.
type config struct {
	listen       string
	portal       string
	clientID     string
	clientSecret string
	redirectURIs listFlag
	autoApprove  bool
	legacyExpiry bool
	location     string
	readyFile    string
	quiet        bool
}

// secretEnv names the environment variable that may carry the client
// secret instead of the command line.
const secretEnv = "UNITYCRM_EMULATOR_CLIENT_SECRET"

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// parseFlags reads the command line.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("unitycrm-accounts-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8085",
		"loopback `address` to listen on; port 0 picks a free one")
	fs.StringVar(&c.portal, "portal", accountstest.DefaultPortal,
		"portal `id` in /clientoauth/v2/{portal}/...")
	fs.StringVar(&c.clientID, "client-id", defaultClientID,
		"`id` of the registered client")
	fs.StringVar(&c.clientSecret, "client-secret", envOr(secretEnv, defaultClientSecret),
		"`secret` of the registered client (or set "+secretEnv+", which "+
			"keeps it out of the process list)")
	fs.Var(&c.redirectURIs, "redirect-uri",
		"registered redirect `URI`, repeatable (default: the emulator's "+
			"own /callback)")
	fs.BoolVar(&c.autoApprove, "auto-approve", false,
		"redirect at once instead of showing the consent page")
	fs.BoolVar(&c.legacyExpiry, "legacy-expiry", false,
		"answer expires_in in milliseconds plus expires_in_sec")
	fs.StringVar(&c.location, "location", accountstest.DefaultLocation,
		"`location` parameter of redirects (us, eu, in, ...)")
	fs.StringVar(&c.readyFile, "ready-file", "",
		"write the base URL to `path` once listening")
	fs.BoolVar(&c.quiet, "quiet", false, "do not log requests")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		fs.Usage()
		return c, errUsage
	}
	return c, nil
}

// run serves the emulator until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}

	opts := accountstest.Options{
		Portal:       c.portal,
		Location:     c.location,
		AutoApprove:  c.autoApprove,
		LegacyExpiry: c.legacyExpiry,
	}
	if !c.quiet {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	srv, err := accountstest.Listen(c.listen, opts)
	if err != nil {
		return err
	}
	defer srv.Close()

	// The default redirect URI needs the port, known only now.
	redirects := []string(c.redirectURIs)
	if len(redirects) == 0 {
		redirects = []string{srv.URL + "/callback"}
	}
	srv.AddClient(accountstest.Client{
		ID:           c.clientID,
		Secret:       c.clientSecret,
		RedirectURIs: redirects,
	})

	printEndpoints(stdout, srv.URL, c, redirects)
	if c.readyFile != "" {
		if err := writeReadyFile(c.readyFile, srv.URL); err != nil {
			return err
		}
	}

	<-ctx.Done()
	return nil
}

// printEndpoints tells a person where everything is.
func printEndpoints(w io.Writer, base string, c config, redirects []string) {
	fmt.Fprintf(w, "accounts emulator listening on %s\n", base)
	lines := append(accountstest.Endpoints(base, c.portal),
		[2]string{"client id", c.clientID},
		[2]string{"redirect", strings.Join(redirects, " ")})
	for _, l := range lines {
		fmt.Fprintf(w, "  %-10s %s\n", l[0], l[1])
	}
	fmt.Fprintf(w, "  plain Zoho paths under %s/oauth/v2/ work too\n", base)
}

// writeReadyFile writes the base URL to path atomically, so a script
// polling for the file never reads half of it.
func writeReadyFile(path, base string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	defer os.Remove(tmp.Name())

	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("ready file: %w", err)
	}
	if _, err := tmp.WriteString(base + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("ready file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}

	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}
