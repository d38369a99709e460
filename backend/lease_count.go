package backend

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
)

// Lease counts live in the token's storage entry, so they survive restarts
// and failover. Concurrent reads of one token share their writes: each
// read joins the open batch, one member writes the whole batch's count in
// a single read-modify-write, and every member returns only once that
// write has succeeded (group commit). Reads hold the credential's lock
// shared; whatever else changes a token entry holds it exclusively, so no
// batch is in flight then.

// leaseCounter batches the lease increments of one token.
type leaseCounter struct {
	mu       sync.Mutex
	refs     int
	open     *leaseBatch
	flushing bool
}

// leaseBatch is increments written together.
type leaseBatch struct {
	n    int
	err  error
	done chan struct{} // closed once written (or failed)
	lead chan struct{} // closed when a member should write the batch
}

// countLease adds delta leases to token id of a credential and returns
// once that is stored. The caller holds the credential's lock shared.
func (b *backend) countLease(ctx context.Context, s logical.Storage, name, id string, delta int) error {
	key := tokenKey(name, id)
	c := b.acquireCounter(key)
	defer b.releaseCounter(key, c)

	// A member's own cancellation must not fail the others' write.
	ctx = context.WithoutCancel(ctx)
	return c.add(delta, func(n int) error {
		tok, err := getToken(ctx, s, name, id)
		if err != nil {
			return err
		}
		if tok == nil {
			return fmt.Errorf("access token %s of credential %q is gone", id, name)
		}
		tok.Leases += n
		if tok.Leases < 0 {
			tok.Leases = 0
		}
		return putToken(ctx, s, name, id, tok)
	})
}

func (c *leaseCounter) add(delta int, write func(n int) error) error {
	c.mu.Lock()
	if c.open == nil {
		c.open = &leaseBatch{done: make(chan struct{}), lead: make(chan struct{})}
		if !c.flushing {
			close(c.open.lead)
		}
	}
	batch := c.open
	batch.n += delta
	c.mu.Unlock()

	select {
	case <-batch.done:
		return batch.err
	case <-batch.lead:
	}

	// The first member through takes the batch; the rest wait for it.
	c.mu.Lock()
	if c.open != batch || c.flushing {
		c.mu.Unlock()
		<-batch.done
		return batch.err
	}
	c.open = nil
	c.flushing = true
	c.mu.Unlock()

	batch.err = write(batch.n)

	c.mu.Lock()
	c.flushing = false
	if c.open != nil {
		close(c.open.lead)
	}
	c.mu.Unlock()
	close(batch.done)
	return batch.err
}

func (b *backend) acquireCounter(key string) *leaseCounter {
	b.countersMu.Lock()
	defer b.countersMu.Unlock()
	c := b.counters[key]
	if c == nil {
		c = &leaseCounter{}
		b.counters[key] = c
	}
	c.refs++
	return c
}

func (b *backend) releaseCounter(key string, c *leaseCounter) {
	b.countersMu.Lock()
	defer b.countersMu.Unlock()
	c.refs--
	if c.refs == 0 {
		delete(b.counters, key)
	}
}
