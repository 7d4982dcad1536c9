package iam

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

type family uint8

const (
	famString family = iota
	famStringIgnoreCase
	famStringLike
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famArn
	famNull
)

type comparison uint8

const (
	cmpEq comparison = iota
	cmpLT
	cmpLE
	cmpGT
	cmpGE
)

type setQualifier uint8

const (
	setNone setQualifier = iota
	setAnyValue
	setAllValues
)

type operator struct {
	family   family
	cmp      comparison
	negated  bool // StringNotEquals, NotIpAddress, ...: true when no value matches
	ifExists bool
	set      setQualifier
}

var baseOperators = map[string]operator{
	"StringEquals":              {family: famString},
	"StringNotEquals":           {family: famString, negated: true},
	"StringEqualsIgnoreCase":    {family: famStringIgnoreCase},
	"StringNotEqualsIgnoreCase": {family: famStringIgnoreCase, negated: true},
	"StringLike":                {family: famStringLike},
	"StringNotLike":             {family: famStringLike, negated: true},
	"NumericEquals":             {family: famNumeric},
	"NumericNotEquals":          {family: famNumeric, negated: true},
	"NumericLessThan":           {family: famNumeric, cmp: cmpLT},
	"NumericLessThanEquals":     {family: famNumeric, cmp: cmpLE},
	"NumericGreaterThan":        {family: famNumeric, cmp: cmpGT},
	"NumericGreaterThanEquals":  {family: famNumeric, cmp: cmpGE},
	"DateEquals":                {family: famDate},
	"DateNotEquals":             {family: famDate, negated: true},
	"DateLessThan":              {family: famDate, cmp: cmpLT},
	"DateLessThanEquals":        {family: famDate, cmp: cmpLE},
	"DateGreaterThan":           {family: famDate, cmp: cmpGT},
	"DateGreaterThanEquals":     {family: famDate, cmp: cmpGE},
	"Bool":                      {family: famBool},
	"BinaryEquals":              {family: famBinary},
	"IpAddress":                 {family: famIP},
	"NotIpAddress":              {family: famIP, negated: true},
	"ArnEquals":                 {family: famArn},
	"ArnLike":                   {family: famArn},
	"ArnNotEquals":              {family: famArn, negated: true},
	"ArnNotLike":                {family: famArn, negated: true},
	"Null":                      {family: famNull},
}

var familyNames = [...]string{
	famString:           "String",
	famStringIgnoreCase: "String",
	famStringLike:       "String",
	famNumeric:          "Numeric",
	famDate:             "Date",
	famBool:             "Bool",
	famBinary:           "Binary",
	famIP:               "IP address",
	famArn:              "ARN",
	famNull:             "Null",
}

// parseOperator reads "[ForAnyValue:|ForAllValues:]Base[IfExists]". Names are
// matched exactly, as IAM does.
func parseOperator(name string) (operator, error) {
	rest := name
	set := setNone
	if r, ok := strings.CutPrefix(rest, "ForAnyValue:"); ok {
		rest, set = r, setAnyValue
	} else if r, ok := strings.CutPrefix(rest, "ForAllValues:"); ok {
		rest, set = r, setAllValues
	}
	op, ok := baseOperators[rest]
	ifExists := false
	if !ok {
		if base, cut := strings.CutSuffix(rest, "IfExists"); cut {
			op, ok = baseOperators[base]
			ifExists = true
		}
	}
	if !ok {
		return operator{}, fmt.Errorf("unknown condition operator %q", name)
	}
	if op.family == famNull && (ifExists || set != setNone) {
		return operator{}, fmt.Errorf("condition operator %q: Null takes neither IfExists nor a set qualifier", name)
	}
	op.ifExists, op.set = ifExists, set
	return op, nil
}

// takesVariables reports whether AWS substitutes policy variables in the
// family's values (string, ARN and Boolean operators only).
func (f family) takesVariables() bool {
	switch f {
	case famString, famStringIgnoreCase, famStringLike, famArn, famBool:
		return true
	}
	return false
}

// condValue is one compiled condition value.
type condValue struct {
	tmpl template  // families taking variables
	str  string    // static string value
	toks []token   // static wildcard tokens (StringLike, ARN)
	num  *big.Rat  // Numeric
	date time.Time // Date
	flag bool      // Bool, Null
	bin  []byte    // Binary
	ip   netip.Prefix
}

func compileValue(f family, raw string, substitute bool) (condValue, error) {
	var cv condValue
	switch f {
	case famString, famStringIgnoreCase, famStringLike, famArn, famBool:
		t, err := parseTemplate(raw, substitute)
		if err != nil {
			return cv, err
		}
		cv.tmpl = t
		if t.vars {
			return cv, nil
		}
		cv.str = t.static()
		switch f {
		case famStringLike:
			toks, _ := t.resolve(nil, true)
			cv.toks = collapseStars(toks)
		case famArn:
			toks, _ := t.resolve(nil, true)
			cv.toks = collapseStars(toks)
			if !arnPatternShape(cv.toks) {
				return cv, fmt.Errorf("%q is not an ARN (six colon-separated components) or \"*\"", raw)
			}
		case famBool:
			b, ok := parseBool(cv.str)
			if !ok {
				return cv, fmt.Errorf("%q is not a Boolean (true or false)", raw)
			}
			cv.flag = b
		}
	case famNumeric, famDate, famBinary, famIP:
		t := typedFamilies[f]
		if !t.parse(&cv, raw) {
			return cv, fmt.Errorf("%q is not %s%s", raw, t.what, noVarsHint(raw, f))
		}
	case famNull:
		b, ok := parseBool(raw)
		if !ok {
			return cv, fmt.Errorf("%q is not true or false", raw)
		}
		cv.flag = b
	}
	return cv, nil
}

// typedFamilies take values of their own type, parsed once when the policy
// is, and no policy variables.
var typedFamilies = map[family]struct {
	what  string // "%q is not <what>"
	parse func(cv *condValue, raw string) bool
}{
	famNumeric: {"a number", func(cv *condValue, raw string) (ok bool) { cv.num, ok = parseNumber(raw); return ok }},
	famDate:    {"an ISO 8601 date or epoch seconds", func(cv *condValue, raw string) (ok bool) { cv.date, ok = parseDate(raw); return ok }},
	famBinary:  {"base64", func(cv *condValue, raw string) (ok bool) { cv.bin, ok = parseBase64(raw); return ok }},
	famIP:      {"an IP address or CIDR range", func(cv *condValue, raw string) (ok bool) { cv.ip, ok = parsePrefix(raw); return ok }},
}

func noVarsHint(raw string, f family) string {
	if strings.Contains(raw, "${") {
		return " (policy variables are not supported with " + familyNames[f] + " operators)"
	}
	return ""
}

// arnPatternShape accepts "*" or a pattern with at least five colons.
func arnPatternShape(p []token) bool {
	if len(p) == 1 && p[0].kind == tStar {
		return true
	}
	colons := 0
	for _, t := range p {
		if t.kind == tLit && t.r == ':' {
			colons++
		}
	}
	return colons >= 5
}

// Condition is one condition key tested by one operator.
type Condition struct {
	Operator string // as written, e.g. "ForAnyValue:StringLikeIfExists"
	Key      string // as written, e.g. "aws:PrincipalTag/team"
	Values   []string

	op     operator
	key    string // lower-cased: context keys are case-insensitive
	values []condValue
}

// resolvedValue is a condition value after variable substitution.
type resolvedValue struct {
	cv   *condValue
	str  string
	toks []token
}

// resolve substitutes variables in the policy values. missing reports that
// some value could not be resolved; such values are left out.
func (c *Condition) resolve(ctx *evalContext) (out []resolvedValue, missing bool) {
	out = make([]resolvedValue, 0, len(c.values))
	for i := range c.values {
		cv := &c.values[i]
		rv := resolvedValue{cv: cv, str: cv.str, toks: cv.toks}
		if c.op.family.takesVariables() && cv.tmpl.vars {
			switch c.op.family {
			case famStringLike, famArn:
				toks, ok := cv.tmpl.resolve(ctx, true)
				if !ok {
					missing = true
					continue
				}
				rv.toks = collapseStars(toks)
			default:
				s, ok := cv.tmpl.resolveString(ctx)
				if !ok {
					missing = true
					continue
				}
				rv.str = s
			}
		}
		out = append(out, rv)
	}
	return out, missing
}

// eval decides the condition for a request. effect is the statement's: it
// settles which way an unresolvable policy variable fails under a negated
// operator, so that it never widens access (see Statement matching).
func (c *Condition) eval(ctx *evalContext, effect Effect) bool {
	vals := ctx.values(c.key)
	op := c.op
	if op.family == famNull {
		// "true": the key is absent; "false": it is present. Values are OR'ed.
		absent := len(vals) == 0
		for _, v := range c.values {
			if v.flag == absent {
				return true
			}
		}
		return false
	}
	present := len(vals) > 0
	if op.set != setNone && present && allEmpty(vals) {
		// A request set that resolves to nothing (for example an empty
		// string) is treated as an empty set by ForAllValues/ForAnyValue.
		present = false
	}
	if !present {
		switch {
		case op.set == setAnyValue:
			// ForAnyValue is false for a missing key or an empty set,
			// IfExists or not: AWS ignores IfExists under ForAnyValue
			// (an Allow with ForAnyValue:StringEqualsIfExists on a key
			// the request lacks allows nothing). A Deny keeps IfExists'
			// documented reading, true, which can only deny more.
			return op.ifExists && effect == EffectDeny
		case op.ifExists:
			return true
		case op.set == setAllValues:
			return true
		default:
			// A missing key matches no value: false, and so true for a
			// negated operator.
			return op.negated
		}
	}
	policy, missing := c.resolve(ctx)
	if missing && op.negated && effect == EffectAllow {
		// Leaving the value out would make "matches none of" easier to
		// satisfy, so the Allow does not apply.
		return false
	}
	// matched counts the request values that match a policy value under
	// the operator's positive form; a value of the wrong type fails all.
	matched := 0
	for _, v := range vals {
		m, ok := c.matchValue(v, policy)
		if !ok {
			return false
		}
		if m {
			matched++
		}
	}
	switch op.set {
	case setAnyValue: // some value satisfies the operator
		if op.negated {
			return matched < len(vals)
		}
		return matched > 0
	case setAllValues: // every value satisfies it
		if op.negated {
			return matched == 0
		}
		return matched == len(vals)
	default:
		return (matched > 0) != op.negated
	}
}

func allEmpty(vals []string) bool {
	for _, v := range vals {
		if v != "" {
			return false
		}
	}
	return true
}

// matchValue reports whether one request value matches any policy value
// under the operator's positive form. ok is false when the request value is
// not of the operator's type (an unparseable number, date, Boolean or IP
// address), which makes the whole condition false.
func (c *Condition) matchValue(v string, policy []resolvedValue) (matched, ok bool) {
	match, ok := c.matcher(v)
	if !ok {
		return false, false
	}
	return slices.ContainsFunc(policy, match), true
}

// matcher is the operator's positive form applied to request value v, or
// ok false when v is not of the operator's type.
func (c *Condition) matcher(v string) (match func(resolvedValue) bool, ok bool) {
	switch c.op.family {
	case famString:
		return func(p resolvedValue) bool { return p.str == v }, true
	case famStringIgnoreCase:
		return func(p resolvedValue) bool { return strings.EqualFold(p.str, v) }, true
	case famStringLike:
		rv := []rune(v)
		return func(p resolvedValue) bool { return globMatch(p.toks, rv) }, true
	case famArn:
		return func(p resolvedValue) bool { return matchARN(p.toks, v) }, true
	case famBool:
		b, ok := parseBool(v)
		return func(p resolvedValue) bool { pb, ok := parseBool(p.str); return ok && pb == b }, ok
	case famNumeric:
		n, ok := parseNumber(v)
		return func(p resolvedValue) bool { return compare(n.Cmp(p.cv.num), c.op.cmp) }, ok
	case famDate:
		d, ok := parseDate(v)
		return func(p resolvedValue) bool { return compare(d.Compare(p.cv.date), c.op.cmp) }, ok
	case famBinary:
		return func(p resolvedValue) bool { return bytes.Equal([]byte(v), p.cv.bin) }, true
	case famIP:
		a, ok := parseAddr(v)
		return func(p resolvedValue) bool { return p.cv.ip.Contains(a) }, ok
	}
	return func(resolvedValue) bool { return false }, true
}

// compare applies a comparison to the sign of request value minus policy value.
func compare(sign int, cmp comparison) bool {
	switch cmp {
	case cmpLT:
		return sign < 0
	case cmpLE:
		return sign <= 0
	case cmpGT:
		return sign > 0
	case cmpGE:
		return sign >= 0
	default:
		return sign == 0
	}
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// maxExponent keeps exact decimal arithmetic cheap on hostile input.
const maxExponent = 400

// parseNumber reads an integer or decimal ("10", "-2.5", "1e3") exactly.
// strconv.ParseFloat would also accept "NaN", "Inf" and hexadecimal forms
// and would round large integers.
func parseNumber(s string) (*big.Rat, bool) {
	if len(s) == 0 || len(s) > 512 {
		return nil, false
	}
	i := 0
	if s[i] == '+' || s[i] == '-' {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return nil, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return nil, false
		}
		e, err := strconv.Atoi(s[start:i])
		if err != nil || e > maxExponent {
			return nil, false
		}
	}
	if i != len(s) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// dateLayouts are the W3C profiles of ISO 8601 that AWS documents, with and
// without a zone designator (UTC when absent). Fractional seconds are
// accepted by time.Parse after the seconds field.
var dateLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
	"2006-01",
}

// parseDate reads an ISO 8601 date-time or epoch seconds. A string of digits
// is read as epoch seconds (aws:EpochTime's form), so the W3C year-only form
// is not supported.
func parseDate(s string) (time.Time, bool) {
	if s == "" || len(s) > 64 {
		return time.Time{}, false
	}
	if isEpoch(s) {
		sec, frac, _ := strings.Cut(s, ".")
		n, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || n > 253402300799 { // 9999-12-31T23:59:59Z
			return time.Time{}, false
		}
		var nsec int64
		if frac != "" {
			if len(frac) > 9 {
				frac = frac[:9]
			}
			f, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			nsec = f
		}
		return time.Unix(n, nsec).UTC(), true
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func isEpoch(s string) bool {
	sec, frac, hasDot := strings.Cut(s, ".")
	if sec == "" || (hasDot && frac == "") {
		return false
	}
	for _, part := range []string{sec, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

func parseBase64(s string) ([]byte, bool) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	return nil, false
}

// parsePrefix reads a CIDR range or a single address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		// Compare IPv4-mapped ranges as IPv4, as request addresses are.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
