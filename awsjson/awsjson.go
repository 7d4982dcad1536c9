// Package awsjson implements the server side of the AWS JSON 1.1 protocol:
// X-Amz-Target dispatch, JSON bodies, and errors that every SDK parses
// (the X-Amzn-ErrorType header, which Go's SDK reads first, and __type,
// which botocore reads).
package awsjson

import (
	"encoding/json"
	"net/http"
	"strings"
)

// ContentType is the media type of JSON 1.1 requests and responses.
const ContentType = "application/x-amz-json-1.1"

// Target splits "Service.Operation".
func Target(h string) (service, op string, ok bool) {
	i := strings.LastIndexByte(h, '.')
	if i <= 0 || i == len(h)-1 {
		return "", "", false
	}
	return h[:i], h[i+1:], true
}

// WriteResult writes v as a 200 JSON body.
func WriteResult(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ContentType)
	_, err = w.Write(b)
	return err
}

// WriteError writes an error body {"__type": code, "message": msg} with
// the X-Amzn-ErrorType header.
func WriteError(w http.ResponseWriter, status int, code, message string) error {
	b, err := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, message})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
