package iamapi

import (
	"maps"
	"slices"
)

// Operations are the IAM actions this service answers (metrics label only
// these).
func Operations() []string { return slices.Sorted(maps.Keys((&Service{}).handlers())) }

// Operations are the actions Handle answers (shttp.QueryService).
func (s *Service) Operations() []string { return Operations() }
