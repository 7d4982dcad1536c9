package http

import (
	"net/http"

	"github.com/shiftkey/shiftkey"
)

// CodeExpiredToken is sent for expired STS session credentials.
const CodeExpiredToken = "ExpiredToken"

// statusByCode is the one table from AWS error code to HTTP status. Codes
// not listed are client errors (400).
var statusByCode = map[string]int{
	shiftkey.CodeAccessDenied:               http.StatusForbidden,
	shiftkey.CodeClusterNotFound:            http.StatusNotFound,
	shiftkey.CodeMalformedQueryString:       http.StatusNotFound, // sic: AWS documents 404
	shiftkey.CodeInvalidClientTokenID:       http.StatusForbidden,
	shiftkey.CodeSignatureDoesNotMatch:      http.StatusForbidden,
	shiftkey.CodeMissingAuthenticationToken: http.StatusForbidden,
	shiftkey.CodeIncompleteSignature:        http.StatusBadRequest,
	shiftkey.CodeRequestExpired:             http.StatusBadRequest,
	shiftkey.CodeInternalFailure:            http.StatusInternalServerError,
	shiftkey.CodeServiceUnavailable:         http.StatusServiceUnavailable,
	shiftkey.CodeNoSuchEntity:               http.StatusNotFound,
	shiftkey.CodeEntityAlreadyExists:        http.StatusConflict,
	shiftkey.CodeConcurrentModification:     http.StatusConflict,
	"RequestEntityTooLarge":                 http.StatusRequestEntityTooLarge,
	"DeleteConflict":                        http.StatusConflict,
	"LimitExceeded":                         http.StatusConflict,
	CodeExpiredToken:                        http.StatusBadRequest,
	shiftkey.CodeConflict:                   http.StatusConflict,
	"ResourceNotFoundFault":                 http.StatusNotFound,
	"CustomDomainAssociationNotFoundFault":  http.StatusNotFound,
	shiftkey.CodeResourceNotFound:           http.StatusNotFound,
	"InternalServerException":               http.StatusInternalServerError,
	"ServiceQuotaExceededException":         http.StatusPaymentRequired, // sic: Serverless' model says 402
	"ThrottlingException":                   http.StatusTooManyRequests, // Serverless' model; the Query protocol's Throttling stays 400
}

// StatusOf returns the HTTP status of an AWS error code.
func StatusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusBadRequest
}
