package iam

import "strings"

type tokKind uint8

const (
	tLit      tokKind = iota // one literal character
	tStar                    // any run of characters
	tQuest                   // any one character
	tStarSeg                 // any run of characters without a colon (ARN segment)
	tQuestSeg                // any one character except a colon (ARN segment)
)

type token struct {
	kind tokKind
	r    rune
}

// globTokens turns policy text into tokens; '*' and '?' are wildcards.
func globTokens(dst []token, s string) []token {
	for _, r := range s {
		switch r {
		case '*':
			dst = append(dst, token{kind: tStar})
		case '?':
			dst = append(dst, token{kind: tQuest})
		default:
			dst = append(dst, token{kind: tLit, r: r})
		}
	}
	return dst
}

func literalTokens(dst []token, s string) []token {
	for _, r := range s {
		dst = append(dst, token{kind: tLit, r: r})
	}
	return dst
}

// collapseStars returns a copy of p with runs of '*' merged: they match the
// same strings as one, and fewer stars keep the matchers' worst case smaller.
// It copies because compiled patterns are shared between goroutines.
func collapseStars(p []token) []token {
	out := make([]token, 0, len(p))
	for _, t := range p {
		if t.kind == tStar && len(out) > 0 && out[len(out)-1].kind == tStar {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Match reports whether value matches the IAM wildcard pattern, where '*'
// matches any run of characters (including none) and '?' exactly one. The
// comparison is case-sensitive and runs in O(len(pattern)·len(value)) time at
// worst, whatever the pattern.
func Match(pattern, value string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == value
	}
	p := collapseStars(globTokens(nil, pattern))
	return globMatch(p, []rune(value))
}

// MatchAction reports whether an action such as "redshift:GetClusterCredentials"
// matches an Action pattern such as "Redshift:Get*". Service prefixes and action
// names are case-insensitive in IAM.
func MatchAction(pattern, action string) bool {
	return Match(strings.ToLower(pattern), strings.ToLower(action))
}

// globMatch is the greedy two-pointer matcher for patterns made of tLit, tStar
// and tQuest. On a mismatch it resumes from the most recent star, advanced by
// one character: any earlier star could only re-cover text the later star can
// cover too, so older stars never need revisiting and no backtracking tree
// arises.
func globMatch(p []token, v []rune) bool {
	pi, vi := 0, 0
	star, mark := -1, 0
	for vi < len(v) {
		if pi < len(p) {
			switch t := p[pi]; t.kind {
			case tStar:
				star, mark = pi, vi
				pi++
				continue
			case tQuest:
				pi++
				vi++
				continue
			case tLit:
				if t.r == v[vi] {
					pi++
					vi++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		mark++
		pi, vi = star+1, mark
	}
	for pi < len(p) && p[pi].kind == tStar {
		pi++
	}
	return pi == len(p)
}

// nfaMatch handles patterns with segment-bounded wildcards, for which the
// greedy argument does not hold (a bounded star cannot stand in for an
// earlier one). It tracks the set of pattern positions reachable after each
// input character: O(len(p)·len(v)) time, O(len(p)) space.
func nfaMatch(p []token, v []rune) bool {
	cur := make([]bool, len(p)+1)
	next := make([]bool, len(p)+1)
	closure := func(set []bool) {
		for i, t := range p {
			if set[i] && (t.kind == tStar || t.kind == tStarSeg) {
				set[i+1] = true
			}
		}
	}
	cur[0] = true
	closure(cur)
	for _, c := range v {
		clear(next)
		alive := false
		for i, t := range p {
			if !cur[i] {
				continue
			}
			switch t.kind {
			case tLit:
				if t.r == c {
					next[i+1], alive = true, true
				}
			case tQuest:
				next[i+1], alive = true, true
			case tQuestSeg:
				if c != ':' {
					next[i+1], alive = true, true
				}
			case tStar:
				next[i], alive = true, true
			case tStarSeg:
				if c != ':' {
					next[i], alive = true, true
				}
			}
		}
		if !alive {
			return false
		}
		closure(next)
		cur, next = next, cur
	}
	return cur[len(p)]
}

// resourceTokens applies the Resource element's segment rule to a copy of p:
// wildcards stay within one colon-separated segment, except that a '*' ending
// a segment may extend past colons.
func resourceTokens(p []token) (out []token, bounded bool) {
	p = collapseStars(p)
	for i := range p {
		switch p[i].kind {
		case tQuest:
			p[i].kind = tQuestSeg
			bounded = true
		case tStar:
			if i+1 < len(p) && !(p[i+1].kind == tLit && p[i+1].r == ':') {
				p[i].kind = tStarSeg
				bounded = true
			}
		}
	}
	return p, bounded
}

// resourcePattern is a Resource entry ready for matching.
type resourcePattern struct {
	toks    []token
	bounded bool // has segment-bounded wildcards: needs nfaMatch
}

func newResourcePattern(p []token) resourcePattern {
	toks, bounded := resourceTokens(p)
	return resourcePattern{toks, bounded}
}

func (rp resourcePattern) match(resource []rune) bool {
	if rp.bounded {
		return nfaMatch(rp.toks, resource)
	}
	return globMatch(rp.toks, resource)
}

// matchARN implements ArnLike: each of the six colon-separated components is
// matched on its own, so a wildcard never crosses into another component
// (the sixth, the resource, may itself contain colons).
func matchARN(p []token, value string) bool {
	if len(p) == 1 && p[0].kind == tStar {
		return true
	}
	vparts := strings.SplitN(value, ":", 6)
	if len(vparts) != 6 {
		return false
	}
	comp := 0
	start := 0
	for i, t := range p {
		if comp < 5 && t.kind == tLit && t.r == ':' {
			if !globMatch(p[start:i], []rune(vparts[comp])) {
				return false
			}
			comp++
			start = i + 1
		}
	}
	if comp != 5 {
		return false
	}
	return globMatch(p[start:], []rune(vparts[5]))
}
