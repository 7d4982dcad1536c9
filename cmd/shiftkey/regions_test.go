package main

import (
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey"
)

func TestConfigRegions(t *testing.T) {
	parse := func(y string) (*Config, error) {
		return ParseConfig(strings.NewReader("store: {sqlite: /tmp/x.db}\n"+y), func(string) (string, bool) { return "", false })
	}
	cfg, err := parse("")
	if err != nil || len(cfg.Regions) != 1 || cfg.Regions[0] != shiftkey.DefaultRegion {
		t.Fatalf("default regions %v, %v", cfg, err)
	}
	cluster := `clusters: [{identifier: c, region: %s, database: dev, gateway: {listen: "127.0.0.1:0"}, backend: {host: /tmp, port: 5432, admin_user: a}}]`
	for _, tt := range []struct{ yaml, field string }{
		{`regions: [US-EAST-1]`, "regions[0]"},
		{`regions: [us-east-1, "xx nowhere"]`, "regions[1]"},
		{"regions: [us-east-1]\n" + strings.Replace(cluster, "%s", "eu-west-1", 1), "clusters[0].region"},
		{"workgroups: [{name: wg1, namespace: ns1, region: eu-west-1, database: dev, gateway: {listen: \"127.0.0.1:0\"}, backend: {host: /tmp, port: 5432, admin_user: a}}]", "workgroups[0].region"},
	} {
		if _, err := parse(tt.yaml); err == nil || !strings.Contains(err.Error(), tt.field+":") {
			t.Errorf("%s: error %v, want one naming %s", tt.yaml, err, tt.field)
		}
	}
	if _, err := parse("regions: [us-east-1, eu-west-1]\n" + strings.Replace(cluster, "%s", "eu-west-1", 1)); err != nil {
		t.Fatalf("a cluster in a served region: %v", err)
	}
}
