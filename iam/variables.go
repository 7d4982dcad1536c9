package iam

import (
	"fmt"
	"strings"
)

type partKind uint8

const (
	partText    partKind = iota // policy text: '*' and '?' are wildcards where the operator has them
	partVar                     // ${key} or ${key, 'default'}
	partLiteral                 // ${*}, ${?}, ${$}: that character, never a wildcard
)

type part struct {
	kind       partKind
	text       string // partText: the text; partLiteral: the character; partVar: the default
	key        string // partVar: the context key, lower-cased
	hasDefault bool
}

// template is a Resource entry or condition value with its policy variables
// located. Substituted values are inserted literally: a '*' in a user name
// must not turn into a wildcard.
type template struct {
	parts []part
	vars  bool // contains a partVar, so the value depends on the request
}

// parseTemplate splits s into text and variables. Without substitution
// (policy language 2008-10-17) the whole string is text, as AWS documents.
func parseTemplate(s string, substitute bool) (template, error) {
	if !substitute || !strings.Contains(s, "${") {
		return template{parts: []part{{kind: partText, text: s}}}, nil
	}
	var t template
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{kind: partText, text: rest[:i]})
		}
		p, n, err := parseVariable(rest[i+2:])
		if err != nil {
			return template{}, fmt.Errorf("policy variable in %q: %v", s, err)
		}
		if p.kind == partVar {
			t.vars = true
		}
		t.parts = append(t.parts, p)
		rest = rest[i+2+n:]
	}
	if rest != "" {
		t.parts = append(t.parts, part{kind: partText, text: rest})
	}
	return t, nil
}

// parseVariable reads a variable body after "${" up to and including its
// closing brace and returns how many bytes it used.
func parseVariable(s string) (part, int, error) {
	end := strings.IndexAny(s, ",}")
	if end < 0 {
		return part{}, 0, fmt.Errorf("missing '}'")
	}
	key := strings.TrimSpace(s[:end])
	if key == "" {
		return part{}, 0, fmt.Errorf("empty variable name")
	}
	special := key == "*" || key == "?" || key == "$"
	if !special && strings.ContainsAny(key, " \t\r\n${'") {
		return part{}, 0, fmt.Errorf("invalid variable name %q", key)
	}
	p := part{kind: partVar, key: strings.ToLower(key)}
	n := end + 1
	if s[end] == ',' {
		// ${key, 'default'}: the default is quoted; '' stands for a quote.
		rest := strings.TrimLeft(s[n:], " ")
		n += len(s[n:]) - len(rest)
		if !strings.HasPrefix(rest, "'") {
			return part{}, 0, fmt.Errorf("default value must be in single quotes")
		}
		var def strings.Builder
		i := 1
		closed := false
		for i < len(rest) {
			if rest[i] == '\'' {
				if i+1 < len(rest) && rest[i+1] == '\'' {
					def.WriteByte('\'')
					i += 2
					continue
				}
				closed = true
				i++
				break
			}
			def.WriteByte(rest[i])
			i++
		}
		if !closed {
			return part{}, 0, fmt.Errorf("unterminated default value")
		}
		n += i
		after := strings.TrimLeft(s[n:], " ")
		n += len(s[n:]) - len(after)
		if !strings.HasPrefix(after, "}") {
			return part{}, 0, fmt.Errorf("missing '}' after default value")
		}
		n++
		p.text, p.hasDefault = def.String(), true
	}
	if special {
		if p.hasDefault {
			return part{}, 0, fmt.Errorf("${%s} takes no default", key)
		}
		return part{kind: partLiteral, text: key}, n, nil
	}
	return p, n, nil
}

// resolve expands the template for a request. ok is false when a variable has
// no single value in the request and no default: AWS then treats the entry as
// not matching. wild selects whether policy text wildcards are kept.
func (t *template) resolve(ctx *evalContext, wild bool) (toks []token, ok bool) {
	for _, p := range t.parts {
		switch p.kind {
		case partText:
			if wild {
				toks = globTokens(toks, p.text)
			} else {
				toks = literalTokens(toks, p.text)
			}
		case partLiteral:
			toks = literalTokens(toks, p.text)
		case partVar:
			v, found := ctx.variable(p.key)
			if !found {
				if !p.hasDefault {
					return nil, false
				}
				v = p.text
			}
			toks = literalTokens(toks, v)
		}
	}
	return toks, true
}

// resolveString expands the template into a plain string (for operators
// without wildcards).
func (t *template) resolveString(ctx *evalContext) (string, bool) {
	if !t.vars {
		return t.static(), true
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case partText, partLiteral:
			b.WriteString(p.text)
		case partVar:
			v, found := ctx.variable(p.key)
			if !found {
				if !p.hasDefault {
					return "", false
				}
				v = p.text
			}
			b.WriteString(v)
		}
	}
	return b.String(), true
}

// static is the template's value when it has no variables.
func (t *template) static() string {
	if len(t.parts) == 1 {
		return t.parts[0].text
	}
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.text)
	}
	return b.String()
}
