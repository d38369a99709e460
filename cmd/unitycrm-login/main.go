// Command unitycrm-login takes an operator from "engine configured" to
// "credential stored": it asks the Unity CRM secrets engine for a grant-code
// URL, has a CRM user approve it in a browser, and writes the redirect back
// to creds/<name>. Run it with -h for the flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt,
		syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, openBrowser)
	stop()
	os.Exit(code)
}
