package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/authz"
	shttp "github.com/shiftkey/shiftkey/http"
	rs "github.com/shiftkey/shiftkey/redshift"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestClientIPOf(t *testing.T) {
	proxies := prefixes("10.0.0.0/8", "2001:db8:ffff::/48")
	tests := []struct {
		name   string
		cfg    shttp.ClientIP
		peer   string
		header map[string][]string
		want   string
	}{
		{"no proxies: the socket", shttp.ClientIP{}, "198.51.100.9:4000", nil, "198.51.100.9"},
		{"no proxies: the header is ignored", shttp.ClientIP{}, "198.51.100.9:4000", map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, "198.51.100.9"},
		{"untrusted peer: the header is ignored", shttp.ClientIP{TrustedProxies: proxies}, "198.51.100.9:4000", map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, "198.51.100.9"},
		{"trusted peer without header: the proxy", shttp.ClientIP{TrustedProxies: proxies}, "10.0.0.2:4000", nil, "10.0.0.2"},
		{"trusted peer: the client it names", shttp.ClientIP{TrustedProxies: proxies}, "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"right-most untrusted, spoofed entries left of it", shttp.ClientIP{TrustedProxies: proxies}, "10.0.0.2:4000",
			map[string][]string{"X-Forwarded-For": {"192.0.2.1, 10.9.9.9, 203.0.113.7, 10.0.0.3"}}, "203.0.113.7"},
		{"several header lines in order", shttp.ClientIP{TrustedProxies: proxies}, "10.0.0.2:4000",
			map[string][]string{"X-Forwarded-For": {"192.0.2.1", "203.0.113.7", "10.0.0.3"}}, "203.0.113.7"},
		{"only proxies: the left-most", shttp.ClientIP{TrustedProxies: proxies}, "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"10.1.1.1, 10.0.0.3"}}, "10.1.1.1"},
		{"garbage stops at the proxy that wrote it", shttp.ClientIP{TrustedProxies: proxies}, "10.0.0.2:4000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.7, nonsense, 10.0.0.3"}}, "10.0.0.3"},
		{"entry with a port", shttp.ClientIP{TrustedProxies: proxies}, "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"203.0.113.7:5555"}}, "203.0.113.7"},
		{"IPv6 proxy and client", shttp.ClientIP{TrustedProxies: proxies}, "[2001:db8:ffff::1]:4000", map[string][]string{"X-Forwarded-For": {"2001:db8:1::5"}}, "2001:db8:1::5"},
		{"IPv4-mapped peer", shttp.ClientIP{TrustedProxies: proxies}, "[::ffff:10.0.0.2]:4000", map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"custom header", shttp.ClientIP{TrustedProxies: proxies, Header: "X-Real-IP"}, "10.0.0.2:4000",
			map[string][]string{"X-Real-Ip": {"203.0.113.8"}, "X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.RemoteAddr = tt.peer
			r.Header = tt.header
			if got := tt.cfg.Of(r); got != tt.want {
				t.Fatalf("Of = %q, want %q", got, tt.want)
			}
		})
	}
}

// headerTransport adds a header to every request after the SDK signed it,
// as a proxy in front of shiftkey would.
type headerTransport struct{ name, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if h.name != "" {
		r.Header.Set(h.name, h.value)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// An IpAddress condition on aws:SourceIp sees the socket's address, or the
// client a trusted proxy names; a header from any other peer changes
// nothing. The test's peer is 127.0.0.1.
func TestSourceIPCondition(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: "office", ID: shiftkey.NewID("AIDA"), Path: "/", ARN: "arn:aws:iam::" + account + ":user/office", CreatedAt: time.Now()}
	k := &shiftkey.AccessKey{ID: shiftkey.NewID("AKIA"), Secret: shiftkey.NewSecretKey(), UserName: "office", Status: "Active", CreatedAt: time.Now()}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"redshift:GetClusterCredentials","Resource":"*",
		"Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}`
	if err := f.store.CreateEntity(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateAccessKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutInlinePolicy(ctx, shiftkey.KindUser, "office", shiftkey.PolicyDocument{Name: "office", Document: policy}); err != nil {
		t.Fatal(err)
	}
	serve := func(cip shttp.ClientIP) string {
		authorizer := &authz.Authorizer{Store: f.store}
		api := &shttp.Server{Identities: f.store, Redshift: &rs.Service{Store: f.store, Authorizer: authorizer, Now: time.Now},
			AccountID: account, Now: time.Now, ClientIP: cip}
		t.Cleanup(api.WaitBackground) // before the store closes
		srv := httptest.NewServer(api.Handler())
		t.Cleanup(srv.Close)
		return srv.URL
	}
	call := func(url, header, value string) error {
		c := redshift.New(redshift.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
			HTTPClient: &http.Client{Transport: headerTransport{header, value}},
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, nil
			}),
		})
		_, err := c.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String("dev-cluster"), DbUser: aws.String("alice")})
		return err
	}
	trusted := serve(shttp.ClientIP{TrustedProxies: prefixes("127.0.0.0/8")})
	untrusted := serve(shttp.ClientIP{TrustedProxies: prefixes("10.0.0.0/8")})
	none := serve(shttp.ClientIP{})
	realIP := serve(shttp.ClientIP{TrustedProxies: prefixes("127.0.0.0/8"), Header: "X-Real-IP"})
	tests := []struct {
		name, url, header, value string
		allowed                  bool
	}{
		{"trusted proxy names an office address", trusted, "X-Forwarded-For", "203.0.113.7", true},
		{"trusted proxy, client spoofs an office address left of its own", trusted, "X-Forwarded-For", "203.0.113.7, 198.51.100.1", false},
		{"trusted proxy without header: the proxy's own address", trusted, "", "", false},
		{"untrusted peer's header is ignored", untrusted, "X-Forwarded-For", "203.0.113.7", false},
		{"no proxies configured: header ignored", none, "X-Forwarded-For", "203.0.113.7", false},
		{"configured header", realIP, "X-Real-IP", "203.0.113.9", true},
		{"other header than the configured one", realIP, "X-Forwarded-For", "203.0.113.7", false},
	}
	for _, tt := range tests {
		err := call(tt.url, tt.header, tt.value)
		switch {
		case tt.allowed && err != nil:
			t.Errorf("%s: %v, want allowed", tt.name, err)
		case !tt.allowed && (err == nil || !strings.Contains(err.Error(), "AccessDenied")):
			t.Errorf("%s: %v, want AccessDenied", tt.name, err)
		}
	}
}
