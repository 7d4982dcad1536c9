package config

import (
	"reflect"
	"testing"
)

func TestSharedBackendsFindsGatewaysOnOneServer(t *testing.T) {
	b := func(host string, port int) BackendConfig { return BackendConfig{Host: host, Port: port} }
	c := &Config{
		Clusters: []ClusterConfig{
			{Identifier: "analytics", Backend: b("/var/run/postgresql", 5432)},
			{Identifier: "other", Backend: b("db.example.com", 5432)},
			{Identifier: "alone", Backend: b("db.example.com", 5433)},
		},
		Workgroups: []WorkgroupConfig{
			{Name: "analytics-wg", Backend: b("/var/run/postgresql/", 0)}, // the default port, the same directory
			{Name: "other-wg", Backend: b("DB.example.com", 5432)},
		},
	}
	want := [][]string{{"cluster analytics", "workgroup analytics-wg"}, {"cluster other", "workgroup other-wg"}}
	if got := c.SharedBackends(); !reflect.DeepEqual(got, want) {
		t.Fatalf("SharedBackends() = %q, want %q", got, want)
	}
	c.Workgroups = nil
	if got := c.SharedBackends(); got != nil {
		t.Fatalf("without the workgroups: %q, want none", got)
	}
}
