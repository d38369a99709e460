package accountstest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestOAuth2Library drives the whole flow with golang.org/x/oauth2, as the
// plugin does.
func TestOAuth2Library(t *testing.T) {
	h := newHarness(t, Options{})
	cfg := &oauth2.Config{
		ClientID:     testClientID,
		ClientSecret: testSecret,
		RedirectURL:  testRedirect,
		Scopes:       []string{"ZohoCRM.org.ALL", "ZohoCRM.users.READ"},
		Endpoint: oauth2.Endpoint{
			AuthURL:   h.srv.URL + portalPrefix + "/auth",
			TokenURL:  h.srv.URL + portalPrefix + "/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient,
		&http.Client{Timeout: 10 * time.Second})

	// A person approves the auth URL the library built.
	cb, err := h.srv.Approve(cfg.AuthCodeURL("state-1",
		oauth2.AccessTypeOffline, oauth2.ApprovalForce), "")
	if err != nil {
		t.Fatal(err)
	}
	q, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	if q.Query().Get("state") != "state-1" {
		t.Errorf("callback %s lost the state", cb)
	}
	code := q.Query().Get("code")

	tok, err := cfg.Exchange(ctx, code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Errorf("token %+v, want a Bearer token with a refresh token", tok)
	}
	if got := tok.Extra("api_domain"); got != h.srv.URL {
		t.Errorf("api_domain %v, want %s", got, h.srv.URL)
	}
	if d := time.Until(tok.Expiry); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expiry in %s, want an hour", d)
	}

	// The library reports the provider's errors in HTTP 200 answers.
	_, err = cfg.Exchange(ctx, code)
	var rerr *oauth2.RetrieveError
	if !errors.As(err, &rerr) || rerr.ErrorCode != "invalid_code" {
		t.Errorf("second Exchange: %v, want RetrieveError invalid_code", err)
	}

	// A refresh keeps the refresh token the answer leaves out.
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken ||
		fresh.RefreshToken != tok.RefreshToken {
		t.Errorf("refresh gave access %q refresh %q", fresh.AccessToken,
			fresh.RefreshToken)
	}

	// The new token works at the CRM API through the library's client.
	resp, err := cfg.Client(ctx, fresh).Get(h.srv.URL + "/crm/v6/org")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK ||
		!strings.Contains(string(body), companyName) {
		t.Errorf("CRM API: HTTP %d %s", resp.StatusCode, body)
	}
}
