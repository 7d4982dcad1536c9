package iam

import "testing"

func TestSize(t *testing.T) {
	for doc, want := range map[string]int{
		``:                          0,
		`{"a":"b"}`:                 9,
		"{\n\t\"a\" : \"b\"\r\n}  ": 9,
		`{"é":"ü"}`:                 9, // characters, not bytes
	} {
		if got := Size(doc); got != want {
			t.Errorf("Size(%q) = %d, want %d", doc, got, want)
		}
	}
}
