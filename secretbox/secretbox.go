// Package secretbox seals the secrets shiftkey must keep in a usable form
// (SigV4 secret keys) under a key-encryption key, with AES-256-GCM from the
// standard library, and checks the modes of the files that hold them.
//
// A sealed value is text: "v1.<key id>.<base64url(nonce || ciphertext)>".
// The key id names the key that sealed it, so that during a rotation a
// reader knows which of the keys it holds opens a value. The additional
// data binds a ciphertext to the row it belongs to: moving it to another
// row makes it fail to open.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/shiftkey/shiftkey/atomicfile"
)

// KeySize is the size of a key-encryption key: AES-256.
const KeySize = 32

const version = "v1"

// Key is a key-encryption key.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey makes a key of KeySize raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("a store key is %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// The id is a hash of the key, so a value names its key without the
	// store keeping a list: 64 bits tell keys apart and reveal nothing.
	sum := sha256.Sum256(append([]byte("shiftkey store key id\x00"), raw...))
	return &Key{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// ParseKey reads a key written as base64 (standard or URL alphabet, with
// or without padding; surrounding space ignored) or as KeySize raw bytes.
func ParseKey(b []byte) (*Key, error) {
	if len(b) == KeySize {
		return NewKey(b)
	}
	text := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(text); err == nil {
			return NewKey(raw)
		}
	}
	return nil, fmt.Errorf("want %d bytes, raw or base64", KeySize)
}

// GenerateKey makes a random key and its base64 text.
func GenerateKey() (*Key, []byte, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, err
	}
	k, err := NewKey(raw)
	if err != nil {
		return nil, nil, err
	}
	return k, []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), nil
}

// ID names the key in the values it seals.
func (k *Key) ID() string { return k.id }

// Seal encrypts plaintext bound to aad (what identifies the row).
func (k *Key) Seal(plaintext, aad []byte) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := k.aead.Seal(nonce, nonce, plaintext, k.additional(aad))
	return Prefix(k.id) + base64.RawURLEncoding.EncodeToString(ct), nil
}

// additional is the GCM additional data: the format and key id too, so a
// value cannot be relabelled.
func (k *Key) additional(aad []byte) []byte {
	return append([]byte(Prefix(k.id)), aad...)
}

// Open decrypts a value sealed by k with the same aad.
func (k *Key) Open(sealed string, aad []byte) ([]byte, error) {
	id, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	if id != k.id {
		return nil, fmt.Errorf("value sealed by store key %s, not %s", id, k.id)
	}
	ct, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(ct) < k.aead.NonceSize() {
		return nil, errors.New("malformed sealed value")
	}
	n := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, ct[:n], ct[n:], k.additional(aad))
	if err != nil {
		return nil, fmt.Errorf("sealed value does not open under store key %s (altered, or moved from another row)", k.id)
	}
	return pt, nil
}

// KeyID is the id of the key that sealed a value.
func KeyID(sealed string) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

func split(sealed string) (id, body string, err error) {
	v, rest, ok := strings.Cut(sealed, ".")
	if !ok || v != version {
		return "", "", errors.New("not a sealed value")
	}
	id, body, ok = strings.Cut(rest, ".")
	if !ok || len(id) != 16 {
		return "", "", errors.New("malformed sealed value")
	}
	return id, body, nil
}

// LoadKeyFile reads a key file, refusing one that group or others may
// read or write.
func LoadKeyFile(path string) (*Key, error) {
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store key: %w", err)
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("store key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyFile reads the key file at path, first writing a fresh
// random key there (0600, never replacing a file) when there is none.
func LoadOrCreateKeyFile(path string) (*Key, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := CreateKeyFile(path); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	return LoadKeyFile(path)
}

// CreateKeyFile writes a fresh random key to path, which must not exist.
// The file is written in full under a temporary name, then linked into
// place (atomicfile.Create), so that no reader ever sees half a key.
func CreateKeyFile(path string) (*Key, error) {
	k, text, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Create(path, text, 0o600); err != nil {
		return nil, fmt.Errorf("store key %s: %w", path, err) // the error names only the temporary file
	}
	return k, nil
}

// Prefix is how every value sealed by the key with id begins, for finding
// them in a query.
func Prefix(id string) string { return version + "." + id + "." }
