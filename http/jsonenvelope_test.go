package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func (f *fixture) jsonPost(t *testing.T, user, target, ctype, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/", strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), f.keys[user], req, hex.EncodeToString(sum[:]), "redshift-serverless", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestGetCredentialsJSONEnvelope pins what the contract (§3.1, §3.3) says
// of the JSON 1.1 envelope: unknown members are ignored; errors carry the
// same code in X-Amzn-ErrorType and __type, in a JSON 1.1 body.
func TestGetCredentialsJSONEnvelope(t *testing.T) {
	f := newFixture(t)
	f.workgroup(t)
	const ct = "application/x-amz-json-1.1"
	const tg = "RedshiftServerless.GetCredentials"
	for _, c := range []struct{ target, body, code string }{
		{tg, `{"workgroupName": "edge-wg", "bogus": {"x": [1]}}`, ""},
		{tg, `{"workgroupName":5}`, "ValidationException"},
		{tg, `{"workgroupName":"edge-wg","durationSeconds":"900"}`, "ValidationException"},
		{tg, `{"workgroupName":"edge-wg","durationSeconds":900.5}`, "ValidationException"},
		{tg, `[]`, "SerializationException"},
		{tg, `{`, "SerializationException"},
		{tg, ``, "ValidationException"}, // no body is {}: neither name
		{"RedshiftServerless.Nope", `{}`, "UnknownOperationException"},
		{"Redshift.GetCredentials", `{}`, "UnknownOperationException"},
	} {
		st, h, b := f.jsonPost(t, "admin", c.target, ct, c.body)
		if h.Get("Content-Type") != ct {
			t.Errorf("%s %s: Content-Type %q", c.target, c.body, h.Get("Content-Type"))
		}
		if c.code == "" {
			if st != 200 {
				t.Errorf("%s %s: %d %s", c.target, c.body, st, b)
			}
			continue
		}
		if st != 400 || h.Get("X-Amzn-ErrorType") != c.code || !strings.Contains(b, `"__type":"`+c.code+`"`) {
			t.Errorf("%s %s: %d %q %s, want 400 %s", c.target, c.body, st, h.Get("X-Amzn-ErrorType"), b, c.code)
		}
	}
}
