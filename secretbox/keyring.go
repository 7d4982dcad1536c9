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

// ErrKeyNotInFile marks Resolve's error when the file the store records for
// a key did not give that key: missing, unreadable, or holding another key
// (a rotation replaced it since the store answered).
var ErrKeyNotInFile = errors.New("the store key's file did not hold it")

// Resolve returns the key with id: held, or loaded from the file fileOf
// says the store records for it ("" when the key came from another
// process's environment), checked and then held.
func (r *Keyring) Resolve(id string, fileOf func(id string) (string, error)) (*Key, error) {
	if k := r.Get(id); k != nil {
		return k, nil
	}
	file, err := fileOf(id)
	if errors.Is(err, ErrUnknownKey) {
		return nil, fmt.Errorf("a secret is sealed under store key %s, which this store does not know%.0w", id, ErrUnknownKey)
	}
	if err != nil {
		return nil, err
	}
	if file == "" {
		return nil, fmt.Errorf("store key %s was given from the environment to another process: give it to this one too", id)
	}
	k, err := LoadKeyFile(file)
	if err != nil {
		return nil, fmt.Errorf("store key %s: %w%.0w", id, err, ErrKeyNotInFile)
	}
	if k.ID() != id {
		return nil, fmt.Errorf("store key %s: %s now holds key %s%.0w", id, file, k.ID(), ErrKeyNotInFile)
	}
	r.Add(k)
	return k, nil
}

// RereadAfterRotation runs read, and once more when it met a value sealed
// under a key its store no longer records (ErrUnknownKey) or whose file no
// longer holds it (ErrKeyNotInFile). A store reads a value, then, in
// another statement, the file of the key it names, then the file: a
// rotation that finished in between resealed the value, forgot that key
// and may have written its new key to that file, so the value read again
// is sealed under a key the store records. A key missing for any other
// reason fails the second read too.
func RereadAfterRotation(read func() error) error {
	err := read()
	if errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrKeyNotInFile) {
		err = read()
	}
	return err
}

// Place is where a sealed value is stored, table and column; with the
// row's id it is the value's additional data, so that a value cannot be
// moved to another row or column. Both stores use the same places, so a
// value means the same in either.
type Place string

// The places of the stores' sealed values.
const (
	AccessKeySecret   Place = "access_keys.secret"
	SessionSecret     Place = "sessions.secret"
	CredentialDigests Place = "credentials.digests" // a credential's Redshift verifiers, as a pair
)

// AAD is the additional data of the value of row id at p.
func (p Place) AAD(id string) []byte { return []byte(string(p) + "\x00" + id) }

// SealPair seals a and b as one value of row id at p: one byte for a's
// length (at most 255), a, then b.
func (k *Key) SealPair(p Place, id string, a, b []byte) (string, error) {
	if len(a) > 255 {
		return "", fmt.Errorf("%s %s: a %d-byte value where at most 255 fit", p, id, len(a))
	}
	return k.Seal(append(append([]byte{byte(len(a))}, a...), b...), p.AAD(id))
}

// OpenWith opens sealed with the key keyFor returns for the id it names:
// a store holds values sealed under several keys while one rotates.
func OpenWith(keyFor func(keyID string) (*Key, error), sealed string, aad []byte) ([]byte, error) {
	k, err := keyOf(keyFor, sealed)
	if err != nil {
		return nil, err
	}
	return k.Open(sealed, aad)
}

func keyOf(keyFor func(keyID string) (*Key, error), sealed string) (*Key, error) {
	kid, err := KeyID(sealed)
	if err != nil {
		return nil, err
	}
	return keyFor(kid)
}

// OpenPair opens what SealPair sealed, with the key keyFor returns for
// the id the value names; an empty part comes back nil.
func OpenPair(keyFor func(keyID string) (*Key, error), p Place, id, sealed string) (a, b []byte, err error) {
	k, err := keyOf(keyFor, sealed)
	if err != nil {
		return nil, nil, err
	}
	plain, err := k.Open(sealed, p.AAD(id))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", p, id, err)
	}
	if len(plain) < 1 || len(plain) < 1+int(plain[0]) {
		return nil, nil, fmt.Errorf("%s %s: malformed pair", p, id)
	}
	n := 1 + int(plain[0])
	if n > 1 {
		a = plain[1:n]
	}
	if len(plain) > n {
		b = plain[n:]
	}
	return a, b, nil
}
