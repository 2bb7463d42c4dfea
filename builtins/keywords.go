package builtins

import "strings"

// Keywords returns the keyword arguments that the builtin named name (as
// Spec.Name spells it: "put", "re.sub") takes: its parameters, and the
// control arguments and name= when it takes those. ok is false when there
// is no such builtin or it takes any keyword, so that no call can be
// checked against it.
func Keywords(name string) (keywords []string, ok bool) {
	for _, s := range All() {
		if s.Name != name {
			continue
		}
		for _, p := range s.Params {
			if strings.HasPrefix(p.Name, "**") {
				return nil, false
			}
			if !strings.HasPrefix(p.Name, "*") {
				keywords = append(keywords, strings.TrimSuffix(p.Name, "?"))
			}
		}
		if s.Control {
			keywords = append(keywords, ControlNames()...)
		}
		return keywords, true
	}
	return nil, false
}

// ControlNames returns the names of ControlParams: the control arguments
// and name=, which every operation takes.
func ControlNames() []string {
	var names []string
	for _, p := range ControlParams() {
		names = append(names, p.Name)
	}
	return names
}
