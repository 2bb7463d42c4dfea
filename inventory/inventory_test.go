package inventory

import (
	"go/build"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec string
		want []string
	}{
		{"@local", []string{"@local"}},
		{"@ssh/db1", []string{"@ssh/db1"}},
		{"db1", []string{"db1"}},
		{"deploy@10.0.0.5:2222", []string{"deploy@10.0.0.5:2222"}},
		{"@docker/x", []string{"@docker/x"}},
		{"@local,@docker/a", []string{"@local", "@docker/a"}},
		{"  @local , @docker/a ,db1 ", []string{"@local", "@docker/a", "db1"}},
		{"@docker/web,@ssh/web", []string{"@docker/web", "@ssh/web"}},
		{"@docker/ubuntu:24.04", []string{"@docker/ubuntu:24.04"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			entries, err := Parse(tt.spec)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.spec, err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name)
				if e.Data == nil {
					t.Errorf("entry %q: Data is nil", e.Name)
				}
				if len(e.Groups) != 0 {
					t.Errorf("entry %q: Groups = %v, want none", e.Name, e.Groups)
				}
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Errorf("Parse(%q) = %q, want %q", tt.spec, names, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		spec string
		want []string // substrings of the error
	}{
		{"", []string{"empty inventory"}},
		{"   ", []string{"empty inventory"}},
		{"@local,", []string{"item 2 is empty"}},
		{",@local", []string{"item 1 is empty"}},
		{"@local,,db1", []string{"item 2 is empty"}},
		{"@local, ,db1", []string{"item 2 is empty"}},
		{"@local,@local", []string{`"@local"`, "named twice"}},
		{"db1, db1", []string{`"db1"`, "named twice"}},
		{"db1,@ssh/db1", []string{`"@ssh/db1"`, "named twice", `same as "db1"`}},
		{"@", []string{`"@"`, "missing connector"}},
		{"@/x", []string{`"@/x"`, "missing connector"}},
		{"@ssh/", []string{`"@ssh/"`, "missing address"}},
		{"@SSH/x", []string{`"@SSH/x"`, "lower-case"}},
		{"db 1", []string{`"db 1"`, "whitespace"}},
		{"/etc/hosts", []string{`"/etc/hosts"`, "cannot start with /"}},
		{"inventory.star", []string{`"inventory.star"`, "must be the whole inventory"}},
		{"@local,prod/inventory.star", []string{"must be the whole inventory"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			entries, err := Parse(tt.spec)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.spec, entries)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error %q does not contain %q", tt.spec, err, w)
				}
			}
		})
	}
}

// TestLeaf checks that inventory stays a leaf package: it imports no other
// star-deploy package but internal/starvalue and internal/jsondata, themselves
// leaves.
func TestLeaf(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		leaf := imp == "github.com/star-deploy/star-deploy/internal/starvalue" || imp == "github.com/star-deploy/star-deploy/internal/jsondata"
		if strings.HasPrefix(imp, "github.com/star-deploy/") && !leaf {
			t.Errorf("inventory imports %s; it must be a leaf package", imp)
		}
	}
}
