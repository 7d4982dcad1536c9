package shiftkey_test

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/shiftkey/shiftkey"

// Every package of the project is one of these. Leaves know nothing of the
// project; adapters and services know the domain package and the leaves,
// and another adapter only where the exception says why. Assemblies put
// adapters together into what cmd starts; each may import the adapters and
// the assemblies listed before it, never one after it, nor cmd.
var (
	// Below the leaves: file-system helpers any package may use (secretbox
	// writes its key files with atomicfile); they import nothing of the
	// project.
	base       = []string{"atomicfile"}
	leaves     = []string{"sigv4", "iam", "scram", "awsquery", "awsjson", "dbname", "secretbox", "certauth", "relay", "rslogin", "gencache", "groupcommit", "rowscan", "migrate", "admission", "gcfloor", "wakeset"}
	adapters   = []string{"authz", "devca", "http", "iamapi", "pgbackend", "pgserver", "pgwire", "redshift", "serverless", "sqlite", "sts", "maintenance", "doctor", "metrics", "audit", "postgres", "revocation", "storecache"}
	assemblies = []string{
		// serve's YAML file: it validates against the values the adapters
		// accept (pgwire's relay engines and Redshift auth modes, redshift's
		// identifier rule, iamapi's trust policy parser), converts its limits
		// to http's and pgwire's, and reconciles its identities through
		// iamapi.
		"config",
		// One process's serving parts over one store (API, gateways, sweep,
		// revocation watch, admin listener): it starts the adapters that
		// serve and takes its limits from config's schema.
		"server",
		// `shiftkey dev`'s local environment: a server (above) over its own
		// PostgreSQL, CA, provisioner and data dir.
		"devenv",
	}
	// Wiring and test helpers may import anything.
	free = []string{"cmd", "internal", "bench", "tests", "scripts"}

	exceptions = map[string][]string{
		// The API edge decodes Redshift's Query actions into the typed
		// inputs of package redshift; IAM, STS and Serverless decode their
		// own and are interfaces of http.
		"http": {"redshift"},
	}
)

// TestLayout fails when a leaf imports the project, when an adapter imports
// another adapter outside the exceptions, or when a package is added
// without being placed here.
func TestLayout(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		top := strings.Split(filepath.ToSlash(path), "/")[0]
		if slices.Contains(free, top) {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if _, ok := err.(*build.NoGoError); ok {
			return nil
		}
		if err != nil {
			return err
		}
		var own []string
		for _, imp := range pkg.Imports {
			if imp == module {
				own = append(own, ".")
			} else if rest, ok := strings.CutPrefix(imp, module+"/"); ok {
				own = append(own, rest)
			}
		}
		name := filepath.ToSlash(path)
		switch {
		case slices.Contains(base, name):
			if len(own) > 0 {
				t.Errorf("%s imports %v: the base packages import nothing of the project", name, own)
			}
		case path == "." || slices.Contains(leaves, name):
			for _, imp := range own {
				if !slices.Contains(base, imp) {
					t.Errorf("%s imports %s: the domain package and the leaves import nothing of the project but the base packages", name, imp)
				}
			}
		case slices.Contains(assemblies, name):
			before := assemblies[:slices.Index(assemblies, name)]
			for _, imp := range own {
				if imp != "." && !slices.Contains(base, imp) && !slices.Contains(leaves, imp) && !slices.Contains(adapters, imp) && !slices.Contains(before, imp) {
					t.Errorf("%s imports %s: an assembly imports adapters and the assemblies listed before it", name, imp)
				}
			}
		case slices.Contains(adapters, name):
			for _, imp := range own {
				if imp != "." && !slices.Contains(base, imp) && !slices.Contains(leaves, imp) && !slices.Contains(exceptions[name], imp) {
					t.Errorf("%s imports %s: declare the interface it needs instead, or add an exception that says why", name, imp)
				}
			}
		default:
			t.Errorf("package %s is not placed in layout_test.go: is it a leaf, an adapter or an assembly?", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
