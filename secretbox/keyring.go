package secretbox

import (
	"errors"
	"fmt"
	"sync"
)

// Keyring is the keys one process holds, by id. A store seals under its
// current key and opens a value with the key the value names; a key this
// process was not given is read from the file the store records for it
// (after a rotation run by another process).
type Keyring struct {
	mu   sync.Mutex
	byID map[string]*Key
}

// Get returns the key with id, nil when not held.
func (r *Keyring) Get(id string) *Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// Add holds k.
func (r *Keyring) Add(k *Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*Key{}
	}
	r.byID[k.ID()] = k
}

// ErrUnknownKey is what fileOf returns for an id the store does not record.
var ErrUnknownKey = errors.New("unknown store key")

// Resolve returns the key with id: held, or loaded from the file fileOf
// says the store records for it ("" when the key came from another
// process's environment), checked and then held.
func (r *Keyring) Resolve(id string, fileOf func(id string) (string, error)) (*Key, error) {
	if k := r.Get(id); k != nil {
		return k, nil
	}
	file, err := fileOf(id)
	if errors.Is(err, ErrUnknownKey) {
		return nil, fmt.Errorf("a secret is sealed under store key %s, which this store does not know", id)
	}
	if err != nil {
		return nil, err
	}
	if file == "" {
		return nil, fmt.Errorf("store key %s was given from the environment to another process: give it to this one too", id)
	}
	k, err := LoadKeyFile(file)
	if err != nil {
		return nil, fmt.Errorf("store key %s: %w", id, err)
	}
	if k.ID() != id {
		return nil, fmt.Errorf("store key %s: %s now holds key %s", id, file, k.ID())
	}
	r.Add(k)
	return k, nil
}

// AAD binds a sealed value to its place: the table and column, and the
// row's id. Both stores use it, so a value means the same in either.
func AAD(column, id string) []byte { return []byte(column + "\x00" + id) }

// JoinPair encodes two byte strings as one plaintext: one byte for a's
// length, a, then b. a is at most 255 bytes.
func JoinPair(a, b []byte) ([]byte, error) {
	if len(a) > 255 {
		return nil, fmt.Errorf("a %d-byte value where at most 255 fit", len(a))
	}
	return append(append([]byte{byte(len(a))}, a...), b...), nil
}

// SplitPair decodes what JoinPair encoded; an empty part comes back nil.
func SplitPair(p []byte) (a, b []byte, err error) {
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return nil, nil, errors.New("malformed pair")
	}
	n := 1 + int(p[0])
	if n > 1 {
		a = p[1:n]
	}
	if len(p) > n {
		b = p[n:]
	}
	return a, b, nil
}
