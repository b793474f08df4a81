// Package memstore is an in-memory goka storage whose writes cost the same
// however many keys it holds. goka's own (storage.NewMemory) sorts all of
// its keys on every new key and scans them on every delete, so a table of n
// keys takes O(n² log n) to fill: a read model or a gate of a few tens of
// thousands of keys spent most of its time sorting. This one keeps a map and
// sorts the keys only when an iterator asks for them.
package memstore

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Builder builds a new memory storage per partition, as
// storage.MemoryBuilder does.
func Builder() storage.Builder {
	return func(string, int32) (storage.Storage, error) { return New(), nil }
}

// Store is the storage. It is safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	values map[string][]byte
	offset *int64
}

// New returns an empty store.
func New() *Store { return &Store{values: map[string][]byte{}} }

// Open implements storage.Storage.
func (*Store) Open() error { return nil }

// Close implements storage.Storage.
func (*Store) Close() error { return nil }

// MarkRecovered implements storage.Storage.
func (*Store) MarkRecovered() error { return nil }

// Has implements storage.Storage.
func (s *Store) Has(key string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.values[key]
	return ok, nil
}

// Get implements storage.Storage: nil for a key it does not hold.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.values[key], nil
}

// Set implements storage.Storage.
func (s *Store) Set(key string, value []byte) error {
	if value == nil {
		return errNilValue
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = value
	return nil
}

// Delete implements storage.Storage.
func (s *Store) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.values, key)
	return nil
}

// GetOffset implements storage.Storage.
func (s *Store) GetOffset(def int64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.offset == nil {
		return def, nil
	}
	return *s.offset, nil
}

// SetOffset implements storage.Storage.
func (s *Store) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset = &offset
	return nil
}

// Iterator implements storage.Storage: a snapshot of the store, in key
// order; later writes do not change it.
func (s *Store) Iterator() (storage.Iterator, error) {
	return s.snapshot(func(string) bool { return true }), nil
}

// IteratorWithRange implements storage.Storage: the keys in [start, limit]
// (limit empty: the keys starting with start), as goka's memory storage
// takes them.
func (s *Store) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	if len(limit) == 0 {
		limit = util.BytesPrefix(start).Limit
	}
	from, to := string(start), string(limit)
	return s.snapshot(func(k string) bool { return k >= from && (to == "" || k <= to) }), nil
}

func (s *Store) snapshot(keep func(string) bool) *iterator {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it := &iterator{current: -1, values: make(map[string][]byte)}
	for k, v := range s.values {
		if keep(k) {
			it.keys = append(it.keys, k)
			it.values[k] = v
		}
	}
	slices.Sort(it.keys)
	return it
}

type iterator struct {
	current int
	keys    []string
	values  map[string][]byte
}

func (i *iterator) exhausted() bool { return i.current < 0 || i.current >= len(i.keys) }

func (i *iterator) Next() bool {
	if i.current < len(i.keys) {
		i.current++
	}
	return i.current < len(i.keys)
}

func (*iterator) Err() error { return nil }

func (i *iterator) Key() []byte {
	if i.exhausted() {
		return nil
	}
	return []byte(i.keys[i.current])
}

func (i *iterator) Value() ([]byte, error) {
	if i.exhausted() {
		return nil, nil
	}
	return i.values[i.keys[i.current]], nil
}

func (i *iterator) Release() { i.current = len(i.keys) }

// Seek places the iterator before the first key at or after key: Next moves
// to it.
func (i *iterator) Seek(key []byte) bool {
	n, _ := slices.BinarySearchFunc(i.keys, string(key), strings.Compare)
	i.current = n - 1
	return n < len(i.keys)
}

var errNilValue = errors.New("cannot write nil value")
