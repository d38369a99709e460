package backend

import (
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
		e.clock.Add(time.Hour)
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
