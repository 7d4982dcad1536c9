package config

import (
	"reflect"
	"testing"
)

func TestSharedAcrossDatabasesFindsGatewaysOnOneServerInTwoDatabases(t *testing.T) {
	b := func(host string, port int) BackendConfig { return BackendConfig{Host: host, Port: port} }
	c := &Config{
		Clusters: []ClusterConfig{
			{Identifier: "analytics", Database: "dev", Backend: b("/var/run/postgresql", 5432)},
			{Identifier: "other", Database: "dev", Backend: b("db.example.com", 5432)},
			{Identifier: "alone", Database: "dev", Backend: b("db.example.com", 5433)},
		},
		Workgroups: []WorkgroupConfig{
			{Name: "analytics-wg", Database: "dev", Backend: b("/var/run/postgresql/", 0)}, // the default port, the same directory, the same database
			{Name: "other-wg", Database: "sales", Backend: b("DB.example.com", 5432)},
		},
	}
	want := [][]string{{"cluster other (database dev)", "workgroup other-wg (database sales)"}}
	if got := c.SharedAcrossDatabases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("SharedAcrossDatabases() = %q, want %q", got, want)
	}
	c.Workgroups[0].Database = "prod"
	want = append([][]string{{"cluster analytics (database dev)", "workgroup analytics-wg (database prod)"}}, want...)
	if got := c.SharedAcrossDatabases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("with analytics-wg in prod: %q, want %q", got, want)
	}
}
