package all_test

import (
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/all"
)

func TestRegistry(t *testing.T) {
	r := all.Registry()
	if _, ok := r.Lookup("local"); !ok {
		t.Errorf("local is not registered; schemes: %v", r.Schemes())
	}
	if all.Registry() == r {
		t.Errorf("Registry returns a shared value; want a new registry per call")
	}
	for _, f := range r.Factories() {
		if f.Doc() == "" {
			t.Errorf("connector %s has no Doc", f.Scheme())
		}
		seen := map[string]bool{}
		for _, fld := range f.Fields() {
			if fld.Name == "" || fld.Type == "" || fld.Doc == "" {
				t.Errorf("connector %s: field %+v needs a Name, a Type and a Doc", f.Scheme(), fld)
			}
			if seen[fld.Name] {
				t.Errorf("connector %s: field %s declared twice", f.Scheme(), fld.Name)
			}
			seen[fld.Name] = true
			if want := f.Scheme() + "_"; len(fld.Name) <= len(want) || fld.Name[:len(want)] != want {
				t.Errorf("connector %s: field %s does not start with %q", f.Scheme(), fld.Name, want)
			}
			if err := r.CheckKey(fld.Name); err != nil {
				t.Errorf("connector %s: CheckKey(%s) = %v", f.Scheme(), fld.Name, err)
			}
			// host.data is redacted by name (no registry there): a built-in
			// connector's secrets must follow the name rule, and a key the
			// rule redacts must be declared Secret, for docs and prompts.
			if fld.Secret != connectors.IsSecretKey(fld.Name) {
				t.Errorf("connector %s: field %s has Secret %v but connectors.IsSecretKey says %v", f.Scheme(), fld.Name, fld.Secret, !fld.Secret)
			}
		}
	}
}
