// Command unitycrm-bench-plugin is the Unity CRM secrets engine built for
// profiling by `unitycrm-bench -profile`: the product plugin plus a pprof
// HTTP endpoint on the loopback address in UNITYCRM_BENCH_PPROF. It is not
// a release artifact.
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/unitycrm/vault-plugin-secrets-unitycrm/backend"
)

func main() {
	// Vault may start the binary more than once (metadata mode, then
	// the server); the one that gets the port serves profiles.
	if addr := os.Getenv("UNITYCRM_BENCH_PPROF"); addr != "" {
		if l, err := listenLoopback(addr); err == nil {
			go http.Serve(l, nil)
		}
	}

	if err := backend.Serve(os.Args[1:]); err != nil {
		hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}

// listenLoopback listens on addr, refusing any address but a loopback one.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("pprof address %q is not a loopback IP", addr)
	}
	return net.Listen("tcp", addr)
}
