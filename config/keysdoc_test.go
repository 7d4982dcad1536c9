package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// yamlKeys lists the keys of values the parser accepts under t, as dotted
// paths (lists of blocks as name[]); a block (store, clusters[].gateway)
// is its keys, and inline structs add theirs to their parent's.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		ft := f.Type
		if tag[0] == "" && len(tag) > 1 && tag[1] == "inline" {
			keys = append(keys, yamlKeys(ft, prefix)...)
			continue
		}
		if tag[0] == "" || tag[0] == "-" {
			continue
		}
		path := prefix + tag[0]
		if ft.Kind() == reflect.Slice {
			ft, path = ft.Elem(), path+"[]"
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			keys = append(keys, yamlKeys(ft, path+".")...)
			continue
		}
		keys = append(keys, strings.TrimSuffix(path, "[]"))
	}
	return keys
}

// docs/configuration.md documents every key the parser accepts (it says
// so, and its last section is the table of them), and the commented
// shiftkey.example.yaml, which it says lists every key, shows each one.
// Found when a user reading the docs met allow_superuser_master,
// workgroups[].region and the IAM path and description nowhere.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../shiftkey.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[Config](), "") {
		leaf := key[strings.LastIndexAny(key, ".]")+1:]
		// The table names a key whole (`limits.pool_size`) or by its
		// leaf after a common prefix (`.pool_idle_timeout`).
		if !regexp.MustCompile("`(\\S*[.])?" + regexp.QuoteMeta(leaf) + "`").Match(doc) {
			t.Errorf("docs/configuration.md never names config key %s (`%s`)", key, leaf)
		}
		// The example shows it, maybe commented out: "  # key:" or "key:".
		if !regexp.MustCompile(`(?m)^[\s#-]*`+regexp.QuoteMeta(leaf)+`:`).Match(example) &&
			!regexp.MustCompile(`[{,]\s*`+regexp.QuoteMeta(leaf)+`:`).Match(example) {
			t.Errorf("shiftkey.example.yaml never shows config key %s", key)
		}
	}
}
