package serverless

import (
	"maps"
	"slices"
)

// Operations are the Redshift Serverless operations this service answers
// (metrics label only these).
func Operations() []string { return slices.Sorted(maps.Keys(operations)) }
