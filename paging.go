package shiftkey

import (
	"encoding/base64"
	"slices"
	"strings"
)

// Lists paged by key (IAM's Marker, Serverless' nextToken): items in the
// order of a key, and a token that names the key the page before ended
// with, not an offset, so that an item deleted or created before it
// between two pages makes a client neither miss nor repeat one.

// SortedByKey is a copy of items in the order of key.
func SortedByKey[T any](items []T, key func(T) string) []T {
	return slices.SortedFunc(slices.Values(items), func(a, b T) int { return strings.Compare(key(a), key(b)) })
}

// PageStart is where the page after the key after starts in sorted.
func PageStart[T any](sorted []T, key func(T) string, after string) int {
	i, _ := slices.BinarySearchFunc(sorted, after, func(v T, k string) int {
		if key(v) <= k {
			return -1
		}
		return 1
	})
	return i
}

// pageTokenPrefix starts what a page token encodes; it also keeps tokens
// at least 8 characters long (Serverless models some 8-1024, and
// botocore refuses to send back a shorter one).
const pageTokenPrefix = "after:"

// PageToken is the token of the page after the one that ends with key.
func PageToken(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + key))
}

// PageTokenKey is the key a PageToken names, if token is one.
func PageTokenKey(token string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), pageTokenPrefix)
}
