package iam

import "unicode"

// Size is a policy document's size as IAM counts it against its quotas:
// characters other than white space.
func Size(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}
