package main

import (
	"context"
	"crypto/subtle"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	readHeaderTimeout = 10 * time.Second
	// shutdownGrace lets the browser receive its last page.
	shutdownGrace = 3 * time.Second
)

// arrival is the first valid redirect. url holds the grant code: it goes
// to Vault and nowhere else.
type arrival struct {
	url   string
	reply chan page
}

// page is what the browser is shown.
type page struct {
	status int
	title  string
	text   string
}

// callbackServer receives the redirect on a loopback listener. Only a
// request on the redirect URI's path carrying this login's state counts;
// the first one wins.
type callbackServer struct {
	redirect *url.URL
	state    string

	arrived chan arrival
	once    sync.Once
	ended   chan struct{}
	srv     *http.Server
	served  chan struct{}
}

// listenLoopback binds addr and makes sure it is a loopback address: a
// name such as localhost counts only once it bound one.
func listenLoopback(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	tcp, ok := l.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		l.Close()
		return nil, fmt.Errorf("%s bound %s, which is not a loopback address",
			addr, l.Addr())
	}
	return l, nil
}

// startCallbackServer serves l until stop is called.
func startCallbackServer(l net.Listener, redirect *url.URL,
	state string) *callbackServer {
	c := &callbackServer{
		redirect: redirect,
		state:    state,
		arrived:  make(chan arrival, 1),
		ended:    make(chan struct{}),
		served:   make(chan struct{}),
	}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: readHeaderTimeout}
	go func() {
		defer close(c.served)
		_ = c.srv.Serve(l)
	}()
	return c
}

// wait returns the first valid redirect, or ctx's error.
func (c *callbackServer) wait(ctx context.Context) (arrival, error) {
	select {
	case a := <-c.arrived:
		return a, nil
	case <-ctx.Done():
		return arrival{}, ctx.Err()
	}
}

// stop lets pages in flight finish, then closes the listener.
func (c *callbackServer) stop() {
	close(c.ended)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := c.srv.Shutdown(ctx); err != nil {
		_ = c.srv.Close()
	}
	<-c.served
}

func (c *callbackServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != c.path() {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet || !c.valid(r.URL.Query()) {
		writePage(w, page{http.StatusBadRequest, "Not this login",
			"This is not the redirect this login is waiting for. Open the " +
				"URL unitycrm-login printed."})
		return
	}

	a := arrival{url: c.fullURL(r), reply: make(chan page, 1)}
	first := false
	c.once.Do(func() {
		first = true
		c.arrived <- a
	})
	if !first {
		writePage(w, page{http.StatusConflict, "Already received",
			"This login already received its redirect. See the terminal."})
		return
	}

	select {
	case p := <-a.reply:
		writePage(w, p)
	case <-c.ended:
		writePage(w, page{http.StatusGone, "Login ended",
			"unitycrm-login stopped before finishing. See the terminal."})
	case <-r.Context().Done():
	}
}

// path is the path the redirect arrives on.
func (c *callbackServer) path() string {
	if c.redirect.Path == "" {
		return "/"
	}
	return c.redirect.Path
}

// valid reports whether q is this login's redirect: an answer (code or
// error) with its state. An error without a state is taken too, since
// some servers leave the state out of refusals.
func (c *callbackServer) valid(q url.Values) bool {
	st := q.Get("state")
	switch {
	case q.Get("code") == "" && q.Get("error") == "":
		return false
	case st == "":
		return q.Get("code") == ""
	}
	return subtle.ConstantTimeCompare([]byte(st), []byte(c.state)) == 1
}

// fullURL is the URL the browser was redirected to.
func (c *callbackServer) fullURL(r *http.Request) string {
	u := *c.redirect
	u.RawQuery = r.URL.RawQuery
	u.Fragment = ""
	return u.String()
}

func writePage(w http.ResponseWriter, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(p.status)
	fmt.Fprintf(w, pageHTML, html.EscapeString(p.title),
		html.EscapeString(p.title), html.EscapeString(p.text))
}

const pageHTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>%s</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>%s</h1>
<p>%s</p>
</body></html>
`
