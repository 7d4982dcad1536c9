package config

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// SharedBackends lists the declared gateways (clusters and workgroups) that
// reach the same PostgreSQL server, one list per server that more than one
// reaches, each as "cluster NAME" or "workgroup NAME". Role memberships are
// the server's, while session group grants are tracked per gateway: a
// role's session through one may lose a group its session through another
// joined (docs/configuration.md, "Backends"). The server is judged by its
// host (a socket directory cleaned, a TCP host lower-cased) and port, so
// one server reached by two addresses is not found.
func (c *Config) SharedBackends() [][]string {
	key := func(b BackendConfig) string {
		host := b.Host
		if strings.HasPrefix(host, "/") {
			host = filepath.Clean(host)
		} else {
			host = strings.ToLower(host)
		}
		return fmt.Sprintf("%s:%d", host, cmp.Or(b.Port, 5432))
	}
	by := map[string][]string{}
	var order []string
	add := func(b BackendConfig, name string) {
		k := key(b)
		if by[k] == nil {
			order = append(order, k)
		}
		by[k] = append(by[k], name)
	}
	for _, cl := range c.Clusters {
		add(cl.Backend, "cluster "+cl.Identifier)
	}
	for _, w := range c.Workgroups {
		add(w.Backend, "workgroup "+w.Name)
	}
	var out [][]string
	for _, k := range order {
		if len(by[k]) > 1 {
			out = append(out, slices.Clone(by[k]))
		}
	}
	return out
}
