// Package dbname holds Redshift's rule for database user, database and
// group names, and folds them as the backend will use them. It depends on
// nothing of the project: each API reports a refusal with its own error
// code.
package dbname

import (
	"fmt"
	"strings"
)

// MaxIdentifier is PostgreSQL's identifier limit (NAMEDATALEN-1 bytes).
// Redshift allows 64 bytes, but the backend truncates longer role and
// database names, so two names sharing 63 bytes would reach one role.
const MaxIdentifier = 63

// Error is a name that breaks the rule; Message names the parameter.
type Error struct{ Message string }

func (e *Error) Error() string { return e.Message }

func refuse(format string, args ...any) error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

// Normalize checks v, the value of parameter param, by Redshift's rule
// (1–64 characters from letters, digits, _ + . @ -, starting with a letter,
// not PUBLIC, not a reserved word), refuses what the backend would
// truncate, and returns v folded to lowercase, as Redshift folds unquoted
// names. lower refuses uppercase letters (DbGroups must be lowercase).
func Normalize(param, v string, lower bool) (string, error) {
	if v == "" || len(v) > 64 {
		return "", refuse("%s must be between 1 and 64 characters long.", param)
	}
	first := v[0]
	if !(first >= 'a' && first <= 'z' || !lower && first >= 'A' && first <= 'Z') {
		if lower {
			return "", refuse("%s must begin with a lowercase letter.", param)
		}
		return "", refuse("%s must begin with a letter.", param)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '+', c == '.', c == '@', c == '-':
		case c >= 'A' && c <= 'Z' && !lower:
		default:
			if lower {
				return "", refuse("%s must contain only lowercase letters, numbers, underscore, plus sign, period (dot), at symbol (@), or hyphen.", param)
			}
			return "", refuse("%s must contain only letters, numbers, underscore, plus sign, period (dot), at symbol (@), or hyphen.", param)
		}
	}
	if strings.EqualFold(v, "public") {
		return "", refuse("%s must not be PUBLIC.", param)
	}
	if IsReserved(v) {
		return "", refuse("%s must not be a reserved word: %s.", param, v)
	}
	if len(v) > MaxIdentifier {
		return "", refuse("%s must be at most %d characters long: the backend truncates longer names.", param, MaxIdentifier)
	}
	return strings.ToLower(v), nil
}
