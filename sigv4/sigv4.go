// Package sigv4 verifies AWS Signature Version 4 on incoming HTTP requests,
// from the Authorization header or a presigned query string.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// MaxSkew is how far a request's time may be from the server's.
const MaxSkew = 5 * time.Minute

const amzDateFormat = "20060102T150405Z"

// Error is a verification failure with the AWS error code to send.
type Error struct{ Code, Message string }

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func incomplete(format string, args ...any) error {
	return &Error{Code: "IncompleteSignature", Message: fmt.Sprintf(format, args...)}
}

// Auth is a parsed SigV4 authorization.
type Auth struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	Time          time.Time
	AmzDate       string // the time as sent
	SecurityToken string
	Presigned     bool
	Expires       time.Duration
}

// Parse extracts the authorization of r without checking the signature.
// Exactly one mechanism may authenticate a request: one Authorization
// header, or the X-Amz-* parameters of a presigned query string.
func Parse(r *http.Request) (*Auth, error) {
	q := r.URL.Query()
	presigned := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential")
	hs := r.Header.Values("Authorization")
	switch {
	case len(hs) > 1:
		return nil, incomplete("The Authorization header may be given only once.")
	case len(hs) == 1 && presigned:
		return nil, incomplete("Only one authentication mechanism is allowed: the Authorization header or the X-Amz-* query parameters.")
	case len(hs) == 1 && hs[0] != "":
		return parseHeader(r, hs[0])
	case presigned:
		return parsePresigned(r, q)
	}
	return nil, &Error{Code: "MissingAuthenticationToken", Message: "Request is missing Authentication Token"}
}

func parseHeader(r *http.Request, h string) (*Auth, error) {
	alg, rest, _ := strings.Cut(h, " ")
	if alg != Algorithm {
		return nil, incomplete("Unsupported authorization algorithm; only %s is accepted.", Algorithm)
	}
	params := map[string]string{}
	// A malformed part is named by its place, never quoted: it may hold a
	// signature (the audit log records the error), which could be
	// replayed reformatted.
	for i, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, incomplete("Authorization header parameter %d is not of the form key=value.", i+1)
		}
		if _, dup := params[k]; dup {
			if k != "Credential" && k != "SignedHeaders" && k != "Signature" {
				k = fmt.Sprint(i + 1)
			}
			return nil, incomplete("Authorization header parameter %s given twice.", k)
		}
		params[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if params[k] == "" {
			return nil, incomplete("Authorization header requires '%s' parameter.", k)
		}
	}
	a := &Auth{Signature: params["Signature"]}
	if err := a.setCredential(params["Credential"]); err != nil {
		return nil, err
	}
	if err := a.setSignedHeaders(params["SignedHeaders"]); err != nil {
		return nil, err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		if d := r.Header.Get("Date"); d != "" {
			t, err := http.ParseTime(d)
			if err != nil {
				return nil, incomplete("Date header %q is not a valid date.", d)
			}
			amzDate = t.UTC().Format(amzDateFormat)
		}
	}
	if err := a.setTime(amzDate); err != nil {
		return nil, err
	}
	a.SecurityToken = r.Header.Get("X-Amz-Security-Token")
	if err := a.checkHeaders(r); err != nil {
		return nil, err
	}
	return a, nil
}

// stsPresignedSeconds is how long STS takes a presigned request that
// carries no X-Amz-Expires.
const stsPresignedSeconds = "900"

// stsPresignedMax is the longest STS takes any presigned request for.
const stsPresignedMax = 15 * time.Minute

// presignParams are the query parameters of a presigned request's
// authorization.
var presignParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}

func parsePresigned(r *http.Request, q url.Values) (*Auth, error) {
	for _, k := range presignParams {
		if len(q[k]) > 1 {
			return nil, incomplete("AWS query-string parameter '%s' may be given only once.", k)
		}
	}
	if _, ok := r.Header["X-Amz-Security-Token"]; ok {
		// Presigners put the token in the query; a second source would
		// leave the one checked against the session ambiguous.
		return nil, incomplete("A presigned request carries its security token in the X-Amz-Security-Token query parameter, not a header.")
	}
	if q.Get("X-Amz-Algorithm") != Algorithm {
		return nil, incomplete("X-Amz-Algorithm must be %s.", Algorithm)
	}
	for _, k := range []string{"X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date"} {
		if q.Get(k) == "" {
			return nil, incomplete("AWS query-string parameters must include '%s'.", k)
		}
	}
	a := &Auth{Signature: q.Get("X-Amz-Signature"), Presigned: true, SecurityToken: q.Get("X-Amz-Security-Token")}
	if err := a.setCredential(q.Get("X-Amz-Credential")); err != nil {
		return nil, err
	}
	if err := a.setSignedHeaders(q.Get("X-Amz-SignedHeaders")); err != nil {
		return nil, err
	}
	if err := a.setTime(q.Get("X-Amz-Date")); err != nil {
		return nil, err
	}
	exp := q.Get("X-Amz-Expires")
	if exp == "" && a.Service == "sts" {
		// STS takes a presigned request without it for 15 minutes (it
		// does not honour the parameter: aws/aws-sdk-go#2167), and
		// aws-sdk-go-v2's PresignGetCallerIdentity sets none.
		exp = stsPresignedSeconds
	}
	if exp == "" {
		return nil, incomplete("AWS query-string parameters must include 'X-Amz-Expires'.")
	}
	n, err := strconv.Atoi(exp)
	if err != nil || n < 0 || n > 604800 {
		return nil, incomplete("X-Amz-Expires must be a number of seconds between 0 and 604800.")
	}
	a.Expires = time.Duration(n) * time.Second
	if a.Service == "sts" && a.Expires > stsPresignedMax {
		// STS takes a presigned request for at most 15 minutes whatever it
		// asks; such URLs are bearer tokens (EKS, Vault), so one must not
		// outlive what AWS allows.
		a.Expires = stsPresignedMax
	}
	if err := a.checkHeaders(r); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Auth) setCredential(v string) error {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return incomplete("Credential must have the form <access key>/<date>/<region>/<service>/aws4_request; got %q.", v)
	}
	if len(parts[1]) != 8 {
		return incomplete("Credential date %q must be yyyymmdd.", parts[1])
	}
	if parts[2] == "" || parts[3] == "" {
		return incomplete("Credential must name a region and a service.")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

func (a *Auth) setSignedHeaders(v string) error {
	hs := strings.Split(v, ";")
	host := false
	for _, h := range hs {
		if h == "" || h != strings.ToLower(h) {
			return incomplete("SignedHeaders %q must be lowercase names separated by ';'.", v)
		}
		if h == "host" {
			host = true
		}
	}
	if !host {
		return incomplete("SignedHeaders must include 'host'.")
	}
	a.SignedHeaders = hs
	return nil
}

func (a *Auth) setTime(amzDate string) error {
	if amzDate == "" {
		return incomplete("Authorization requires an X-Amz-Date or Date header.")
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return incomplete("X-Amz-Date %q must have the form yyyymmddThhmmssZ.", amzDate)
	}
	a.Time, a.AmzDate = t, amzDate
	return nil
}

// checkHeaders requires the headers named in SignedHeaders to be present,
// and every x-amz-* header present to be signed, and given once: X-Amz-Target
// chooses the Serverless operation and X-Amz-Security-Token the session, so
// neither may be added or swapped under a captured signature. A repeated
// header is signed as its values joined by commas, which is also how one
// value "A,B" is signed, while the server reads the first: so two lines
// could be made of one, or one read of two the signer meant together.
// (x-amzn-*, such as X-Amzn-Trace-Id, is another prefix, which SDKs leave
// unsigned.)
// Content-Type is not required: aws-sdk-go-v2 and botocore both sign it,
// but this edge chooses nothing by it once a request is authenticated (the
// credential scope names the protocol), so requiring it would only turn
// away other clients.
func (a *Auth) checkHeaders(r *http.Request) error {
	present := make([]string, 0, len(r.Header))
	for k := range r.Header {
		present = append(present, strings.ToLower(k))
	}
	sort.Strings(present)
	for _, h := range present {
		if !strings.HasPrefix(h, "x-amz-") {
			continue
		}
		if !slices.Contains(a.SignedHeaders, h) {
			return incomplete("Header '%s' must be a 'SignedHeader' in the AWS Authorization.", h)
		}
		if len(r.Header[http.CanonicalHeaderKey(h)]) > 1 {
			return incomplete("Header %s may be given only once.", http.CanonicalHeaderKey(h))
		}
	}
	for _, h := range a.SignedHeaders {
		switch h {
		case "host", "content-length":
			continue
		}
		if _, ok := r.Header[http.CanonicalHeaderKey(h)]; !ok {
			return incomplete("Header %s is named in SignedHeaders but absent from the request.", h)
		}
	}
	return nil
}

func mismatch() error {
	return &Error{Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
}

// Verify checks the signature over r and body with secret, and the time
// against now.
func (a *Auth) Verify(r *http.Request, body []byte, secret string, now time.Time) error {
	if a.Date != a.AmzDate[:8] {
		return &Error{Code: "SignatureDoesNotMatch", Message: fmt.Sprintf("Credential should be scoped to a valid date: %s does not match %s.", a.Date, a.AmzDate[:8])}
	}
	if err := a.checkTime(now); err != nil {
		return err
	}
	payloads, err := a.payloadHashes(r, body)
	if err != nil {
		return err
	}
	key := SigningKey(secret, a.Date, a.Region, a.Service)
	for _, p := range payloads {
		if a.matches(r, p, key) {
			return nil
		}
	}
	return mismatch()
}

func (a *Auth) matches(r *http.Request, payload string, key []byte) bool {
	creq := a.canonicalRequest(r, payload)
	sum := sha256.Sum256([]byte(creq))
	scope := a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
	sts := Algorithm + "\n" + a.AmzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	want := hex.EncodeToString(hmacSum(key, sts))
	return hmac.Equal([]byte(want), []byte(strings.ToLower(a.Signature)))
}

func (a *Auth) checkTime(now time.Time) error {
	now = now.UTC()
	if a.Presigned {
		if now.Before(a.Time.Add(-MaxSkew)) {
			return &Error{Code: "RequestExpired", Message: fmt.Sprintf("Request is not yet valid: %s is later than %s (%s + 5 min.)", a.AmzDate, now.Add(MaxSkew).Format(amzDateFormat), now.Format(amzDateFormat))}
		}
		if now.After(a.Time.Add(a.Expires)) {
			return &Error{Code: "RequestExpired", Message: fmt.Sprintf("Request has expired: %s is later than %s.", now.Format(amzDateFormat), a.Time.Add(a.Expires).Format(amzDateFormat))}
		}
		return nil
	}
	// A header-signed request outside the window is SignatureDoesNotMatch
	// (403), as AWS answers it ("Signature expired: …"): the code the SDKs
	// take for clock skew, correcting their clock from the answer's Date
	// and signing again. aws-sdk-go-v2 does not for RequestExpired.
	if a.Time.Before(now.Add(-MaxSkew)) {
		return &Error{Code: "SignatureDoesNotMatch", Message: fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)", a.AmzDate, now.Add(-MaxSkew).Format(amzDateFormat), now.Format(amzDateFormat))}
	}
	if a.Time.After(now.Add(MaxSkew)) {
		return &Error{Code: "SignatureDoesNotMatch", Message: fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)", a.AmzDate, now.Add(MaxSkew).Format(amzDateFormat), now.Format(amzDateFormat))}
	}
	return nil
}

// payloadHashes returns the payload hashes the signature may have been
// computed over.
func (a *Auth) payloadHashes(r *http.Request, body []byte) ([]string, error) {
	sum := sha256.Sum256(body)
	real := hex.EncodeToString(sum[:])
	declared, ok := r.Header["X-Amz-Content-Sha256"]
	switch {
	case a.Presigned && len(body) > 0:
		// A presigned URL carries no hash of a body, so a body is not
		// covered by its signature; AWS hashes the body it receives, which
		// then differs from what the signer hashed.
		return nil, &Error{Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. A presigned request must not carry a body."}
	case ok && len(declared) == 1 && strings.EqualFold(declared[0], real):
		return []string{declared[0]}, nil // signed as written
	case ok:
		// UNSIGNED-PAYLOAD included: these services (unlike S3) always hash
		// the body they received, so a signature over any other declared
		// hash cannot match what AWS computes: SignatureDoesNotMatch.
		return nil, &Error{Code: "SignatureDoesNotMatch", Message: "The provided x-amz-content-sha256 header does not match what was computed."}
	case !a.Presigned:
		return []string{real}, nil
	}
	// No body: presigners differ in what they write for it. Go's signer and
	// botocore (generate_presigned_url, hence `aws eks get-token`) write
	// the hash of the empty body; S3-style presigners, and Go's when told,
	// UNSIGNED-PAYLOAD. With an empty body nothing is unsigned either way:
	// the whole request is the signed method, path, query and headers.
	return []string{real, "UNSIGNED-PAYLOAD"}, nil
}

func (a *Auth) canonicalRequest(r *http.Request, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL, a.Presigned))
	b.WriteByte('\n')
	for _, h := range a.SignedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(a.SignedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if _, ok := r.Header["Content-Length"]; !ok {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	}
	vals := r.Header[http.CanonicalHeaderKey(name)]
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// canonicalURI is the path with each segment URI-encoded, as every SDK
// but S3's signs it (the escaped path, encoded once more). "." and ".."
// segments and empty ones are kept: the SigV4 test suite's normalized form
// of such paths is not accepted (see testsuite_test.go); these services
// live at "/", where all forms agree.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = encode(s)
	}
	return strings.Join(segs, "/")
}

func canonicalQuery(u *url.URL, presigned bool) string {
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(u.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			dk, dv = k, v
		}
		if presigned && dk == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, kv{encode(dk), encode(dv)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// encode is RFC 3986 percent-encoding: unreserved characters stay.
func encode(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// SigningKey derives the key of a credential scope.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k, region)
	k = hmacSum(k, service)
	return hmacSum(k, "aws4_request")
}
