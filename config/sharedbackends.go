package config

import (
	"fmt"
	"slices"
)

// SharedAcrossDatabases lists the declared gateways (clusters and
// workgroups) that reach one PostgreSQL server in more than one database,
// one list per such server, each as "cluster NAME (database DB)" or
// "workgroup NAME (database DB)". Gateways on one server share their
// session groups (a role's memberships are the server's), and judge each
// under an advisory lock, which PostgreSQL keeps per database: through
// gateways in different databases, a session's end and another's login
// asking for the same group at the same moment are not ordered, and the
// group can be revoked from the new session (docs/deployment.md). The
// server is named by shiftkey.Backend.Server, so one server reached by two
// addresses is not found.
func (c *Config) SharedAcrossDatabases() [][]string {
	type gateway struct{ name, db string }
	by := map[string][]gateway{}
	var order []string
	add := func(b BackendConfig, name, db string) {
		k := b.Backend().Server()
		if by[k] == nil {
			order = append(order, k)
		}
		by[k] = append(by[k], gateway{name, db})
	}
	for _, cl := range c.Clusters {
		add(cl.Backend, "cluster "+cl.Identifier, cl.Database)
	}
	for _, w := range c.Workgroups {
		add(w.Backend, "workgroup "+w.Name, w.Database)
	}
	var out [][]string
	for _, k := range order {
		gs := by[k]
		if !slices.ContainsFunc(gs, func(g gateway) bool { return g.db != gs[0].db }) {
			continue
		}
		var names []string
		for _, g := range gs {
			names = append(names, fmt.Sprintf("%s (database %s)", g.name, g.db))
		}
		out = append(out, names)
	}
	return out
}
