package iam

import (
	"math/rand"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything:at/all", true},
		{"?", "", false},
		{"?", "é", true},
		{"??", "é", false},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abcbc", true},
		{"a*c", "abcb", false},
		{"a?c", "abc", true},
		{"a?c", "abbc", false},
		{"*a*b*c*", "xaybzc", true},
		{"*a*b*c*", "xaybz", false},
		{"a**b", "ab", true},
		{"Abc", "abc", false},
		{"redshift:Get*", "redshift:GetClusterCredentials", true},
		{"*?", "", false},
		{"*?", "x", true},
	}
	for _, tc := range cases {
		if got := Match(tc.pattern, tc.value); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}

func TestMatchAction(t *testing.T) {
	if !MatchAction("REDSHIFT:get*", "redshift:GetClusterCredentials") {
		t.Error("action match is not case-insensitive")
	}
	if MatchAction("redshift:Get*", "redshift:DescribeClusters") {
		t.Error("Get* matched DescribeClusters")
	}
}

// TestMatchAdversarial uses patterns that make backtracking matchers take
// exponential time. The test asserts results only; it finishes in
// milliseconds because the matchers are O(len(pattern)·len(value)).
func TestMatchAdversarial(t *testing.T) {
	long := strings.Repeat("a", 10000)
	pattern := strings.Repeat("a*", 100) + "b"
	if Match(pattern, long) {
		t.Error("pattern ending in b matched a string of a's")
	}
	if !Match(strings.Repeat("a*", 100), long) {
		t.Error("a*a*... did not match a string of a's")
	}
	if !Match(pattern, long+"b") {
		t.Error("pattern ending in b did not match")
	}
	if Match(strings.Repeat("*?", 100)+"b", long) {
		t.Error("*?*?...b matched")
	}
	// The segment-bounded matcher, for Resource patterns.
	rp := newResourcePattern(globTokens(nil, "arn:aws:s3:::"+strings.Repeat("a*", 100)+"b"))
	if !rp.bounded {
		t.Fatal("expected segment-bounded stars")
	}
	if rp.match([]rune("arn:aws:s3:::" + long)) {
		t.Error("resource pattern ending in b matched")
	}
	if !rp.match([]rune("arn:aws:s3:::" + long + "b")) {
		t.Error("resource pattern did not match")
	}
	// And the full evaluation path.
	doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"test:key":"` + pattern + `"}}}}`
	p, err := ParsePolicy("adv", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if Evaluate(Request{Action: "a:b", Resource: "*", Context: kv("test:key", long)}, p).Allowed() {
		t.Error("adversarial StringLike matched")
	}
}

// TestMatchersAgree checks the greedy matcher against the automaton on random
// patterns without segment bounds, where both must give the same answer.
func TestMatchersAgree(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []rune("ab:*?")
	for i := 0; i < 20000; i++ {
		p := randString(rng, alphabet, 8)
		v := randString(rng, []rune("ab:"), 10)
		toks := globTokens(nil, p)
		if g, n := globMatch(toks, []rune(v)), nfaMatch(toks, []rune(v)); g != n {
			t.Fatalf("pattern %q value %q: greedy %v, automaton %v", p, v, g, n)
		}
		if g := globMatch(collapseStars(toks), []rune(v)); g != nfaMatch(toks, []rune(v)) {
			t.Fatalf("pattern %q value %q: collapsing stars changed the result", p, v)
		}
	}
}

func randString(rng *rand.Rand, alphabet []rune, max int) string {
	n := rng.Intn(max + 1)
	var b strings.Builder
	for range n {
		b.WriteRune(alphabet[rng.Intn(len(alphabet))])
	}
	return b.String()
}

func TestResourceSegments(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"*", "arn:aws:s3:::b/k", true},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/x:y", true},
		{"arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/2/test/3/object.jpg", true},
		{"arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1-test/object.jpg", false},
		{"arn:aws:s3:::b/*x", "arn:aws:s3:::b/a:x", false},
		{"arn:aws:s3:::b/*x", "arn:aws:s3:::b/ax", true},
		{"arn:aws:s3:::b/?", "arn:aws:s3:::b/:", false},
		{"arn:aws:redshift:*:123456789012:dbuser:*/alice", "arn:aws:redshift:us-west-2:123456789012:dbuser:c1/alice", true},
		{"arn:aws:redshift:us-*:123456789012:dbuser:c1/alice", "arn:aws:redshift:us-west-2:123456789012:dbuser:c1/alice", true},
		{"arn:aws:redshift:us-*-2:123456789012:dbuser:c1/alice", "arn:aws:redshift:us-west-2:123456789012:dbuser:c1/alice", true},
	}
	for _, tc := range cases {
		rp := newResourcePattern(globTokens(nil, tc.pattern))
		if got := rp.match([]rune(tc.value)); got != tc.want {
			t.Errorf("resource %q vs %q = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}

func TestMatchARN(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"*", "anything", true},
		{"arn:aws:iam::123456789012:user/*", "arn:aws:iam::123456789012:user/a", true},
		{"arn:aws:iam::*:user/a", "arn:aws:iam::123456789012:user/a", true},
		{"arn:aws:iam::*:user/a", "arn:aws:iam::1:2:user/a", false},
		{"arn:aws:iam::123456789012:*", "arn:aws:iam::123456789012:user/a:b", true},
		{"arn:aws:iam::123456789012:user/a", "not-an-arn", false},
		{"arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:user/A", false},
	}
	for _, tc := range cases {
		if got := matchARN(collapseStars(globTokens(nil, tc.pattern)), tc.value); got != tc.want {
			t.Errorf("matchARN(%q, %q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
}
