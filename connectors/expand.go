package connectors

import (
	"context"
	"fmt"
	"strings"
)

// Expander is implemented by factories whose inventory names can stand for
// many hosts (pyinfra's make_names_data yielding several names): a Docker
// filter (@docker/label=role=web), the outputs of a Terraform state
// (@terraform). The registry asks it before any host connects; a factory
// that never expands does not implement it, and Factory is unchanged.
//
// The contract, which an out-of-process connector mirrors call for call:
//
//   - Expands(addr) says, without I/O, whether addr (the part of the name
//     after "@scheme/", "" for "@scheme") names many hosts. It must be cheap
//     and give the same answer for the same addr. When it is false, the
//     name is one host and goes to Parse as before.
//   - Expand(ctx, addr, data) lists those hosts. data holds the name's own
//     connector data (the "<scheme>_..." keys, as for Parse). It may do I/O
//     (ask the Docker engine, run terraform) and must stop when ctx ends.
//     It returns the hosts in a stable order, possibly none; an error says
//     what failed and what to do, and the registry adds the name.
//   - Each Expansion's Name is an ordinary inventory name ("@docker/web1",
//     "web1" for SSH) of a registered scheme that does not expand again.
//     Its Data holds inventory data values (string, bool, int64, float64,
//     []any, map[string]any, nil), connector keys among them
//     ("ssh_hostname"); the data the user gave the name is laid over it
//     (the user's wins, as in pyinfra). Its Groups are added to the groups
//     of the name.
//
// Implementations must be safe for concurrent use.
type Expander interface {
	Expands(addr string) bool
	Expand(ctx context.Context, addr string, data map[string]string) ([]Expansion, error)
}

// Expansion is one host an expanding name stands for.
type Expansion struct {
	Name   string         // inventory name of the host, e.g. "@docker/web1" or "10.0.0.5"
	Data   map[string]any // host data the expansion sets; nil for none
	Groups []string       // inventory groups the host joins; nil for none
}

// Expands reports whether name stands for many hosts: its factory is an
// Expander that says so. It does no I/O.
func (r *Registry) Expands(name string) bool {
	scheme, addr := SplitName(name)
	f, _ := r.Lookup(scheme)
	x, ok := f.(Expander)
	return ok && x.Expands(addr)
}

// Expand lists the hosts that name stands for, with the connector data in
// data (keys of the form "<scheme>_..."; other keys are ignored). ok is
// false, with no error and no I/O, when name is a single host (Expands is
// false): give it to Target. Each expansion's name is checked: a scheme
// that is registered, and not one that expands again. Errors name name.
func (r *Registry) Expand(ctx context.Context, name string, data map[string]string) (hosts []Expansion, ok bool, err error) {
	if !r.Expands(name) {
		return nil, false, nil
	}
	scheme, addr := SplitName(name)
	f, _ := r.Lookup(scheme)
	x := f.(Expander) // Expands checked it
	own := map[string]string{}
	for k, v := range data {
		if err := r.CheckKey(k); err != nil {
			return nil, true, fmt.Errorf("host %q: %w", name, err)
		}
		if strings.HasPrefix(k, scheme+"_") {
			own[k] = v
		}
	}
	hosts, err = x.Expand(ctx, addr, own)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", name, err)
	}
	for _, h := range hosts {
		if h.Name == "" {
			return nil, true, fmt.Errorf("%s: the %s connector expanded it to a host with no name", name, scheme)
		}
		s, _ := SplitName(h.Name)
		if _, known := r.Lookup(s); !known {
			return nil, true, fmt.Errorf("%s: expanded to host %q, whose connector %q is not available; known connectors: %s", name, h.Name, s, strings.Join(r.atSchemes(), ", "))
		}
		if r.Expands(h.Name) {
			return nil, true, fmt.Errorf("%s: expanded to %q, which names many hosts again; an expansion must list single hosts", name, h.Name)
		}
	}
	return hosts, true, nil
}
