package connectors

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/star-deploy/star-deploy/internal/spell"
)

// Registry maps schemes to factories. Registration is explicit (see
// connectors/all); there is no global registry.
type Registry struct {
	factories map[string]Factory

	// later supplies the factories of Defer, found the first time an
	// answer could depend on them; laterSet holds them, by scheme, once
	// laterOnce has run. factories is not written after Defer, so readers
	// of it need no lock.
	later     func() []Factory
	laterOnce sync.Once
	laterSet  map[string]Factory
}

// NewRegistry returns a registry holding the given factories. It panics on a
// duplicate scheme, which is a programming error.
func NewRegistry(factories ...Factory) *Registry {
	r := &Registry{factories: map[string]Factory{}}
	for _, f := range factories {
		if err := r.Register(f); err != nil {
			panic("internal error: " + err.Error())
		}
	}
	return r
}

// Register adds f. A second factory for the same scheme, or a scheme that
// is empty or contains "/" or "@", is an error. The zero Registry is ready to
// use.
func (r *Registry) Register(f Factory) error {
	if f == nil {
		return fmt.Errorf("register connector: nil factory")
	}
	s := f.Scheme()
	if s == "" || strings.ContainsAny(s, "/@") {
		return fmt.Errorf("register connector %q: scheme must be non-empty without \"/\" or \"@\"", s)
	}
	if _, dup := r.factories[s]; dup {
		return fmt.Errorf("connector %q registered twice", s)
	}
	if r.factories == nil {
		r.factories = map[string]Factory{}
	}
	r.factories[s] = f
	return nil
}

// Defer adds the factories find returns, as if registered now, but calls
// find only the first time an answer could depend on them: a Lookup of a
// scheme not otherwise registered, Factories and Schemes, and a data key
// with "_" given to CheckKey or Field (a connector's keys are
// "<scheme>_..."). A factory whose scheme is registered already, or
// that Register would refuse, is left out. Register must not be called
// after Defer; find is called at most once, and may be called from any
// goroutine. Star-deploy defers the scan of PATH for connector plugins,
// which a run of built-in connectors never needs.
func (r *Registry) Defer(find func() []Factory) {
	r.later = find
}

// loadLater runs the deferred find once and returns its factories.
func (r *Registry) loadLater() map[string]Factory {
	if r.later == nil {
		return nil
	}
	r.laterOnce.Do(func() {
		set := map[string]Factory{}
		for _, f := range r.later() {
			if f == nil {
				continue
			}
			s := f.Scheme()
			if _, dup := r.factories[s]; dup || s == "" || strings.ContainsAny(s, "/@") {
				continue
			}
			if _, dup := set[s]; !dup {
				set[s] = f
			}
		}
		r.laterSet = set
	})
	return r.laterSet
}

// all returns every factory by scheme, the deferred ones found.
func (r *Registry) all() map[string]Factory {
	later := r.loadLater()
	if len(later) == 0 {
		return r.factories
	}
	out := make(map[string]Factory, len(r.factories)+len(later))
	for s, f := range r.factories {
		out[s] = f
	}
	for s, f := range later {
		out[s] = f
	}
	return out
}

// forKey returns the factories that could own the data key: all of them
// when key has "_", else the registered ones without finding the deferred
// ones (no connector key lacks "_").
//
// A key that a registered factory declares is answered without the
// deferred factories: looking for plugins on PATH reads every directory on
// it, and every run that sets an ssh_ key would pay for that.
func (r *Registry) forKey(key string) map[string]Factory {
	if !strings.Contains(key, "_") {
		return r.factories
	}
	for _, f := range r.factories {
		for _, fld := range f.Fields() {
			if fld.Name == key {
				return r.factories
			}
		}
	}
	return r.all()
}

// Lookup returns the factory for scheme.
func (r *Registry) Lookup(scheme string) (Factory, bool) {
	if f, ok := r.factories[scheme]; ok {
		return f, ok
	}
	f, ok := r.loadLater()[scheme]
	return f, ok
}

// Factories returns every registered factory, sorted by scheme.
func (r *Registry) Factories() []Factory {
	all := r.all()
	out := make([]Factory, 0, len(all))
	for _, f := range all {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scheme() < out[j].Scheme() })
	return out
}

// Schemes returns the registered scheme names, sorted.
func (r *Registry) Schemes() []string {
	var out []string
	for _, f := range r.Factories() {
		out = append(out, f.Scheme())
	}
	return out
}

// SplitName splits an inventory host name into scheme and address:
// "@local" -> ("local", ""), "@ssh/db1" -> ("ssh", "db1"), and a bare
// "db1" -> ("ssh", "db1").
func SplitName(name string) (scheme, addr string) {
	if !strings.HasPrefix(name, "@") {
		return "ssh", name
	}
	rest := name[1:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i], rest[i+1:]
	}
	return rest, ""
}

// DataBorrower is a Factory that also reads the connector data of other
// schemes, declared (and documented) by their own factories: @dockerssh
// takes the ssh_* keys. Registry.Target passes it those keys besides its
// own.
type DataBorrower interface {
	BorrowsData() []string // schemes whose keys the factory reads, e.g. "ssh"
}

// Target parses an inventory host name with the connector data found in
// data (keys of the form "<scheme>_...", and those of the schemes a
// DataBorrower names), validating every connector key.
// It does no I/O.
func (r *Registry) Target(name string, data map[string]string) (Target, error) {
	if name == "" {
		return Target{}, fmt.Errorf("empty host name")
	}
	scheme, addr := SplitName(name)
	f, ok := r.Lookup(scheme)
	if !ok {
		if scheme == "ssh" && !strings.HasPrefix(name, "@") {
			return Target{}, fmt.Errorf("host %q: the ssh connector is not available in this build; use @local or one of %s", name, strings.Join(r.atSchemes(), ", "))
		}
		return Target{}, fmt.Errorf("host %q: unknown connector %q; known connectors: %s", name, scheme, strings.Join(r.atSchemes(), ", "))
	}
	if x, ok := f.(Expander); ok && x.Expands(addr) {
		return Target{}, fmt.Errorf("host %q names many hosts: expand it first (Registry.Expand) and give each of them to Target", name)
	}
	own := map[string]string{}
	for k, v := range data {
		if err := r.CheckKey(k); err != nil {
			return Target{}, fmt.Errorf("host %q: %w", name, err)
		}
		if r.ConnectorKey(scheme, k) {
			own[k] = v
		}
	}
	t, err := f.Parse(addr, own)
	if err != nil {
		return Target{}, fmt.Errorf("host %q: %w", name, err)
	}
	if t.Name == "" {
		t.Name = name
	}
	t.Scheme = scheme
	return t, nil
}

// ConnectorKey reports whether the data key is connector data for the
// hosts of scheme: "<scheme>_..." or, for a DataBorrower, a key of a scheme
// it borrows from ("ssh_port" for @dockerssh). Other keys are host data.
func (r *Registry) ConnectorKey(scheme, key string) bool {
	if strings.HasPrefix(key, scheme+"_") {
		return true
	}
	f, _ := r.Lookup(scheme)
	if b, ok := f.(DataBorrower); ok {
		for _, s := range b.BorrowsData() {
			if strings.HasPrefix(key, s+"_") {
				return true
			}
		}
	}
	return false
}

// CheckKey reports an error for a data key that looks like connector data
// ("<scheme>_...") of a registered connector that does not declare it. Other
// keys are free-form host data and always pass.
func (r *Registry) CheckKey(key string) error {
	// The longest matching scheme owns the key, so "docker_compose_x" goes
	// to a "docker_compose" connector, not to "docker", whatever map order.
	s, f := "", Factory(nil)
	for scheme, fac := range r.forKey(key) {
		if strings.HasPrefix(key, scheme+"_") && len(scheme) > len(s) {
			s, f = scheme, fac
		}
	}
	if f != nil {
		var names []string
		for _, fld := range f.Fields() {
			if fld.Name == key {
				return nil
			}
			names = append(names, fld.Name)
		}
		msg := fmt.Sprintf("unknown data key %q for the %s connector", key, s)
		if best := Closest(key, names); best != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", best)
		} else if len(names) > 0 {
			msg += "; known keys: " + strings.Join(names, ", ")
		} else {
			msg += "; it takes no data keys"
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// Field returns the declared field named key of any registered connector.
func (r *Registry) Field(key string) (Field, bool) {
	for _, f := range r.forKey(key) {
		for _, fld := range f.Fields() {
			if fld.Name == key {
				return fld, true
			}
		}
	}
	return Field{}, false
}

func (r *Registry) atSchemes() []string {
	var out []string
	for _, s := range r.Schemes() {
		out = append(out, "@"+s)
	}
	if len(out) == 0 {
		out = append(out, "(none registered)")
	}
	return out
}

// Closest returns the candidate nearest to s, if any is close enough to be
// a likely typo: the did-you-mean of an unknown name, by the one rule of
// internal/spell that the scripts' names follow too.
func Closest(s string, candidates []string) string {
	return spell.Nearest(s, candidates)
}
