package backend

import (
	"context"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
)

// cachedPrefixes are the storage a read touches: served from memory, a
// read costs one storage write (its lease count) instead of four round
// trips to Vault.
var cachedPrefixes = []string{configPath, credsPrefix, tokensPrefix, selfPrefix, selfTokensPrefix}

// maxCachedEntries bounds the cache; past it, entries are dropped at
// random, which only costs a storage read later.
const maxCachedEntries = 100_000

// entryCache is a write-through cache of storage entries. Every write of
// this backend passes through it; writes replicated from elsewhere reach
// it through Invalidate. A generation per key keeps a read that raced a
// write from caching the older value.
type entryCache struct {
	mu      sync.Mutex
	entries map[string][]byte
	gen     map[string]uint64
}

func newEntryCache() *entryCache {
	return &entryCache{entries: map[string][]byte{}, gen: map[string]uint64{}}
}

func cacheable(key string) bool {
	for _, p := range cachedPrefixes {
		if key == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(key, p)) {
			return true
		}
	}
	return false
}

// drop forgets key, as a write or an invalidation does.
func (c *entryCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	c.gen[key]++
}

// bump marks key as being written, keeping its cached value, and returns
// the new generation.
func (c *entryCache) bump(key string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[key]++
	return c.gen[key]
}

func (c *entryCache) lookup(key string) ([]byte, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[key]
	return v, c.gen[key], ok
}

// store caches value unless key was written since gen was read.
func (c *entryCache) store(key string, value []byte, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[key] != gen {
		return
	}
	if len(c.entries) >= maxCachedEntries {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = value
}

// cachedStorage is logical.Storage with the cache in front.
type cachedStorage struct {
	logical.Storage
	cache *entryCache
}

func (s *cachedStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if !cacheable(key) {
		return s.Storage.Get(ctx, key)
	}
	if v, _, ok := s.cache.lookup(key); ok {
		if v == nil {
			return nil, nil
		}
		return &logical.StorageEntry{Key: key, Value: v}, nil
	}

	_, gen, _ := s.cache.lookup(key)
	entry, err := s.Storage.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	var v []byte
	if entry != nil {
		v = entry.Value
	}
	s.cache.store(key, v, gen)
	return entry, nil
}

func (s *cachedStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if !cacheable(entry.Key) {
		return s.Storage.Put(ctx, entry)
	}
	// Bumping the generation before and after the write makes any read
	// that overlapped it unable to cache what it saw; meanwhile reads get
	// the value from before the write, as they would from storage.
	s.cache.bump(entry.Key)
	err := s.Storage.Put(ctx, entry)
	if err != nil {
		s.cache.drop(entry.Key)
		return err
	}
	gen := s.cache.bump(entry.Key)
	s.cache.store(entry.Key, entry.Value, gen)
	return nil
}

func (s *cachedStorage) Delete(ctx context.Context, key string) error {
	if !cacheable(key) {
		return s.Storage.Delete(ctx, key)
	}
	s.cache.drop(key)
	err := s.Storage.Delete(ctx, key)
	s.cache.drop(key)
	return err
}
