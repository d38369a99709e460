package accountstest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// readHeaderTimeout bounds how long a client may take to send its headers.
const readHeaderTimeout = 10 * time.Second

// Server is an Emulator listening on a loopback address.
type Server struct {
	*Emulator

	// URL is the base URL, such as "http://127.0.0.1:41234".
	URL string

	// Listener is where the server accepts connections.
	Listener net.Listener

	srv       *http.Server
	done      chan struct{}
	closeOnce sync.Once
}

// NewServer starts an Emulator on 127.0.0.1 at a free port, like
// httptest.NewServer. It panics if it cannot listen.
func NewServer(opts Options) *Server {
	s, err := Listen("127.0.0.1:0", opts)
	if err != nil {
		panic(err)
	}
	return s
}

// Listen starts an Emulator on addr, such as "127.0.0.1:8085" or
// "[::1]:0". It refuses any address that is not loopback (127.0.0.0/8, ::1
// or localhost): the emulator hands out tokens to whoever asks.
func Listen(addr string, opts Options) (*Server, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}

	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("accountstest: listen on %q: %w", addr, err)
	}

	// A name such as localhost is trusted only once it bound loopback.
	tcp, ok := l.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		l.Close()
		return nil, fmt.Errorf("accountstest: %q bound %s, which is not a "+
			"loopback address", addr, l.Addr())
	}

	s := &Server{
		Emulator: New(opts),
		URL:      "http://" + l.Addr().String(),
		Listener: l,
		done:     make(chan struct{}),
	}
	s.SetBaseURL(s.URL)
	s.srv = &http.Server{
		Handler:           s.Emulator,
		ReadHeaderTimeout: readHeaderTimeout,
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(l)
	}()
	return s, nil
}

// Close stops the server at once, dropping requests in flight. It may be
// called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.srv.Close()
		<-s.done
	})
}

// checkLoopback refuses an address whose host is not a loopback IP or
// localhost. An empty host would mean every interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("accountstest: bad listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("accountstest: refusing to listen on %q: %w", addr,
		ErrNotLoopback)
}

// ErrNotLoopback is the reason Listen refuses an address.
var ErrNotLoopback = errors.New("the emulator listens on loopback " +
	"addresses only (127.0.0.1, ::1 or localhost)")
