package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// checkRedirect reads the URL the browser was redirected to before it
// goes to Vault: a refusal, another login's state or a missing code are
// explained here. Its messages never quote the URL: it holds the code.
func checkRedirect(raw, state string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return errors.New("that is not a URL: copy the whole address from " +
			"the browser's address bar, starting with http:// or https://")
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return refusal(e, q.Get("error_description"))
	}

	st := q.Get("state")
	switch {
	case q.Get("code") == "":
		return errors.New("the URL has no code parameter: copy the address " +
			"of the page the browser lands on after approving")
	case st == "":
		return errors.New("the URL has no state parameter: start from the " +
			"URL this run printed")
	case subtle.ConstantTimeCompare([]byte(st), []byte(state)) != 1:
		return errors.New("the URL answers another authorization (its state " +
			"differs): approve the URL this run printed and copy that address")
	}
	return nil
}

// refusal explains an error the accounts server redirected with.
func refusal(code, description string) error {
	why := ""
	if code == "access_denied" {
		why = ": the user clicked Deny, or the client asked for too many " +
			"grant codes (about four a minute) and must wait ten minutes"
	}
	if description != "" {
		why += fmt.Sprintf(" (%q)", description)
	}
	return fmt.Errorf("the authorization was refused, the accounts server "+
		"answered error %q%s; nothing was stored", code, why)
}

// readLine returns the first non-blank line of r, trimmed, or ctx's
// error. A pasted URL may come wrapped in quotes or angle brackets.
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if line := trimPasted(sc.Text()); line != "" {
				ch <- result{line: line}
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = errors.New("input ended before a URL was pasted")
		}
		ch <- result{err: err}
	}()

	select {
	case res := <-ch:
		return res.line, res.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func trimPasted(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, `"'<>`)
	return strings.TrimSpace(s)
}
