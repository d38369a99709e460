package backend

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// benchEnv is a configured backend with one authorized credential.
func benchEnv(b *testing.B) *testEnv {
	e := getTestBackendTB(b)
	e.configure(map[string]interface{}{"mint_limit": 100, "mint_window": "1m"})
	e.newCred("office")
	return e
}

// BenchmarkReadReuse is a read served from the current token: storage
// reads, one lease count write, no upstream request.
func BenchmarkReadReuse(b *testing.B) {
	e := benchEnv(b)
	req := &logical.Request{Operation: logical.ReadOperation, Path: "creds/office",
		Storage: e.storage}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.b.HandleRequest(b.Context(), req)
		if err != nil || resp.IsError() {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.emu.Counts().Refreshes; n != 0 {
		b.Fatalf("%d refreshes in a reuse benchmark", n)
	}
}

// BenchmarkReadMint is a read that mints: the current token has expired,
// so each read sends one refresh request to the emulator on loopback.
func BenchmarkReadMint(b *testing.B) {
	e := benchEnv(b)
	req := &logical.Request{Operation: logical.ReadOperation, Path: "creds/office",
		Storage: e.storage}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		e.clock.Advance(time.Hour)
		resp, err := e.b.HandleRequest(b.Context(), req)
		if err != nil || resp.IsError() {
			b.Fatalf("read: %v %v", err, resp.Error())
		}
		n++
	}
	b.StopTimer()
	if got := e.emu.Counts().Refreshes; got != n {
		b.Fatalf("%d refreshes for %d reads", got, n)
	}
}

// BenchmarkAuthCodeURL is the auth-code-url write: a random state, one
// storage write, the URL.
func BenchmarkAuthCodeURL(b *testing.B) {
	e := benchEnv(b)
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "auth-code-url",
		Storage: e.storage, Data: map[string]interface{}{"name": "office"}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.b.HandleRequest(b.Context(), req)
		if err != nil || resp.IsError() {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeriodic10kCredentials is the periodic function with 10,000
// credentials holding 100,000 leases on live tokens, plus one hour's worth
// of expired tokens to sweep.
func BenchmarkPeriodic10kCredentials(b *testing.B) {
	e := getTestBackendTB(b)
	e.configure(nil)
	ctx := b.Context()
	now := e.clock.Now()
	for i := range 10000 {
		id := fmt.Sprintf("cred-%05d", i)
		live := fmt.Sprintf("%016x", i)
		dead := fmt.Sprintf("%016x", i+1<<32)
		cred := &credEntry{RefreshToken: "1000.r" + id, CreatedAt: now, CurrentTokenID: live,
			Tokens: []tokenRef{{ID: live, ExpiresAt: now.Add(time.Hour)}}}
		if err := putCred(ctx, e.storage, id, cred); err != nil {
			b.Fatal(err)
		}
		tok := &tokenEntry{AccessToken: "1000.a" + live, IssuedAt: now,
			ExpiresAt: now.Add(time.Hour), Leases: 10}
		if err := putNewToken(ctx, e.storage, id, live, tok); err != nil {
			b.Fatal(err)
		}
		old := &tokenEntry{AccessToken: "1000.a" + dead, IssuedAt: now.Add(-4 * time.Hour),
			ExpiresAt: now.Add(-3 * time.Hour)}
		if err := putNewToken(ctx, e.storage, id, dead, old); err != nil {
			b.Fatal(err)
		}
	}
	req := &logical.Request{Storage: e.storage}
	b.ResetTimer()
	for b.Loop() {
		if err := e.b.periodic(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ids, _ := e.storage.List(ctx, tokenDirKey("cred-00000"))
	if len(ids) != 1 {
		b.Fatalf("cred-00000 holds %d tokens after the sweep, want 1", len(ids))
	}
}
