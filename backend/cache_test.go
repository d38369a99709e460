package backend

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// countingStorage counts the round trips that reach storage.
type countingStorage struct {
	logical.Storage
	gets, puts atomic.Int64
}

func (c *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	c.gets.Add(1)
	return c.Storage.Get(ctx, key)
}

func (c *countingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	c.puts.Add(1)
	return c.Storage.Put(ctx, e)
}

func TestCache_ReadCostsOneStorageWrite(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	e.read("office") // warm

	counting := &countingStorage{Storage: e.storage}
	e.storage = counting
	for range 10 {
		e.read("office")
	}
	if g, p := counting.gets.Load(), counting.puts.Load(); g != 0 || p != 10 {
		t.Fatalf("10 reads made %d storage reads and %d writes, want 0 and 10", g, p)
	}
}

func TestCache_InvalidateSeesOtherNodesWrites(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	e.read("office")

	// Another node deletes the credential: storage changes underneath,
	// and Vault calls Invalidate.
	if err := e.storage.Delete(t.Context(), credKey("office")); err != nil {
		t.Fatal(err)
	}
	e.b.invalidate(t.Context(), credKey("office"))
	e.mustFail(404, logical.ReadOperation, "creds/office", nil)
}

func TestCache_FailedWriteIsNotCached(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	before := storedCred(t, e, "office").RefreshToken

	inner := e.storage
	e.storage = &failingStorage{Storage: inner, prefix: credsPrefix}
	cb, _ := e.authorize("office", nil)
	if _, err := e.request(logical.UpdateOperation, "creds/office",
		map[string]interface{}{"callback_url": cb}); err == nil {
		t.Fatal("write succeeded with failing storage")
	}
	e.storage = inner
	// The read must see what storage holds, not what the failed write tried.
	e.read("office")
	if storedCred(t, e, "office").RefreshToken != before {
		t.Fatal("storage changed")
	}
	if !e.emu.IsLive(before) {
		t.Fatal("the stored refresh token was revoked")
	}
}

// slowStorage makes every write take a while, as a round trip to Vault's
// storage does.
type slowStorage struct {
	countingStorage
}

func (s *slowStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	time.Sleep(5 * time.Millisecond)
	return s.countingStorage.Put(ctx, e)
}

func TestLeaseCount_ConcurrentReadsShareWrites(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	first := e.read("office")

	slow := &slowStorage{countingStorage{Storage: e.storage}}
	e.storage = slow
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.request(logical.ReadOperation, "creds/office", nil)
			if code, msg := statusOf(resp, err); code != 200 {
				t.Errorf("read: %d %s", code, msg)
			}
		}()
	}
	wg.Wait()

	id := tokenID(first.Data["access_token"].(string))
	tok, err := getToken(t.Context(), e.storage, "office", id)
	if err != nil || tok.Leases != 51 {
		t.Fatalf("lease count %v (err %v), want 51", tok, err)
	}
	puts := slow.puts.Load()
	t.Logf("50 concurrent reads: %d storage writes", puts)
	if puts >= 50 {
		t.Fatalf("%d storage writes for 50 concurrent reads: no batching", puts)
	}
}

func TestLeaseCount_AbandonedReadLeavesNoCount(t *testing.T) {
	e := getTestBackend(t)
	e.configure(nil)
	e.newCred("office")
	lease := e.read("office")
	id := tokenID(lease.Data["access_token"].(string))

	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the application gave up on the read
	_, err := e.b.HandleRequest(ctx, &logical.Request{
		Operation: logical.ReadOperation, Path: "creds/office", Storage: e.storage,
	})
	if err == nil {
		t.Fatal("an abandoned read succeeded")
	}
	tok, err := getToken(t.Context(), e.storage, "office", id)
	if err != nil || tok.Leases != 1 {
		t.Fatalf("lease count %v (err %v), want 1", tok, err)
	}
	// Revoking the one real lease still revokes the token upstream.
	if err := e.revokeLease(lease); err != nil {
		t.Fatal(err)
	}
	if e.emu.IsLive(lease.Data["access_token"].(string)) {
		t.Fatal("token live after its only real lease ended")
	}
}
