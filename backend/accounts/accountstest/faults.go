package accountstest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// malformedBody is the truncated JSON of a Malformed token answer.
const malformedBody = `{"access_token":"1000.8c2e4f0a`

// Faults make token and revoke requests misbehave, as a failing accounts
// server or a proxy in front of it would. A faulted request changes no
// state. When several are set, the first in this order applies: Latency
// (added before any other), Reset, Status, HTML, Malformed, Throttle. Only
// Latency, Reset and Status apply to revoke requests.
//
// In JSON (PUT /_emulator/faults) the fields are latency (a Go duration
// string such as "3s"), status, malformed, html, throttle, localized and
// reset.
type Faults struct {
	// Latency is added to every token and revoke request, with a real
	// sleep that ends early when the client gives up.
	Latency time.Duration

	// Status, if not 0, answers token and revoke requests with this HTTP
	// status and an HTML error page, such as 502 or 503.
	Status int

	// Malformed answers token requests with HTTP 200 and truncated JSON.
	Malformed bool

	// HTML answers token requests with HTTP 200 and an HTML error page.
	HTML bool

	// Throttle answers every token request with the throttle error.
	Throttle bool

	// Localized makes every throttle error, injected or earned, use the
	// localized variant ("error":"拒绝访问").
	Localized bool

	// Reset closes the connection of token and revoke requests without an
	// answer.
	Reset bool
}

// faultsJSON is the JSON shape of Faults.
type faultsJSON struct {
	Latency   string `json:"latency,omitempty"`
	Status    int    `json:"status,omitempty"`
	Malformed bool   `json:"malformed,omitempty"`
	HTML      bool   `json:"html,omitempty"`
	Throttle  bool   `json:"throttle,omitempty"`
	Localized bool   `json:"localized,omitempty"`
	Reset     bool   `json:"reset,omitempty"`
}

// MarshalJSON writes f with Latency as a Go duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{
		Status:    f.Status,
		Malformed: f.Malformed,
		HTML:      f.HTML,
		Throttle:  f.Throttle,
		Localized: f.Localized,
		Reset:     f.Reset,
	}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads f with Latency as a Go duration string; unknown
// fields are an error.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}

	var latency time.Duration
	if j.Latency != "" {
		d, err := time.ParseDuration(j.Latency)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		latency = d
	}
	if latency < 0 {
		return fmt.Errorf("latency: negative duration %q", j.Latency)
	}
	if j.Status != 0 && (j.Status < 100 || j.Status > 599) {
		return fmt.Errorf("status: %d is not an HTTP status", j.Status)
	}
	*f = Faults{
		Latency:   latency,
		Status:    j.Status,
		Malformed: j.Malformed,
		HTML:      j.HTML,
		Throttle:  j.Throttle,
		Localized: j.Localized,
		Reset:     j.Reset,
	}
	return nil
}

// injectFaults applies f to a token request (token) or a revoke request and
// reports whether the request should go on.
func (e *Emulator) injectFaults(w http.ResponseWriter, r *http.Request,
	f Faults, token bool) bool {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		}
	}

	switch {
	case f.Reset:
		resetConnection(w)
	case f.Status != 0:
		writeHTMLPage(w, f.Status, statusTitle(f.Status),
			"The accounts server is temporarily unavailable.", "")
	case !token:
		return true
	case f.HTML:
		writeHTMLPage(w, http.StatusOK, "Accounts",
			"We are unable to process your request right now. "+
				"Please try again later.", "")
	case f.Malformed:
		w.Header().Set("Content-Type", jsonContentType)
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(malformedBody))
	case f.Throttle:
		e.writeTokenError(w, errThrottled, f.Localized)
	default:
		return true
	}
	e.log("fault injected", "path", r.URL.Path)
	return false
}

// resetConnection drops the connection under w without an answer, with a
// TCP reset where it can.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if ok {
		conn, _, err := hj.Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// statusTitle returns "502 Bad Gateway" and the like.
func statusTitle(status int) string {
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}
