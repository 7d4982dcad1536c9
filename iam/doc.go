// Package iam parses AWS IAM identity-based policies and evaluates requests
// against them the way AWS documents identity-policy evaluation: an explicit
// Deny wins, then an Allow, otherwise the request is implicitly denied.
//
// It covers the whole identity-policy language: Version, Id and Statement;
// Effect, Action/NotAction, Resource/NotResource and Condition with every
// condition operator, the IfExists suffix and the ForAnyValue/ForAllValues
// set qualifiers; policy variables with defaults and the ${*}, ${?} and ${$}
// escapes. Principal and NotPrincipal belong to trust and resource-based
// policies and are rejected in identity policies.
//
// Role trust policies (TrustPolicy) are parsed and evaluated here too: their
// statements are identity-policy statements with a Principal, matched
// against the caller (account, user, role or assumed-role session, "*").
// How a trust decision combines with the caller's own policies is authz's
// business.
//
// Where AWS leaves a case open the package fails closed: an unresolvable
// policy variable never makes an Allow apply more widely, and a malformed
// document is rejected at parse time rather than half understood.
package iam
