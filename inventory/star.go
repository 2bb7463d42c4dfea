package inventory

// This file reads inventory.star files and their group_data/.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/internal/starvalue"
)

// fileOptions is runtime.FileOptions, the dialect of deploy scripts, which
// inventory (a leaf) cannot import; TestDialectIsTheRuntimes keeps them equal.
var fileOptions = syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}

// LoadStar reads an inventory.star file: pyinfra's inventory.py in
// Starlark. Each top-level list is a group of hosts (names starting with _
// are private helpers); an item is a host name or a (name, {data}) pair.
// group_data/GROUP.star and group_data/all.star beside the file set data:
// each top-level name is a key. A host's data is, from weakest to
// strongest: all, its groups (the group defined first wins), its own data.
// (--data on the command line, applied by the caller, wins over all.)
func LoadStar(path string) (*Inventory, error) {
	return loadStar(os.DirFS(filepath.Dir(path)), filepath.Base(path), path)
}

// loadStar reads name from fsys; display is the path shown in errors.
func loadStar(fsys fs.FS, name, display string) (*Inventory, error) {
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", unwrapPathError(err, display))
	}
	globals, positions, err := execData(display, src)
	if err != nil {
		return nil, err
	}

	inv := &Inventory{File: display}
	byKey := map[string]int{} // canonical host name -> index in inv.Hosts
	names := sortedByPos(globals, positions)
	for _, gname := range names {
		v := globals[gname]
		pos := positions[gname]
		items, ok := v.(starlark.Indexable)
		if !ok || v.Type() == "string" {
			return nil, fmt.Errorf("%s: %s is a %s; each top-level name of an inventory is a group, a list of hosts (name private helpers with a leading _)", pos.at, gname, v.Type())
		}
		g := Group{Name: gname, Pos: pos.at}
		inGroup := map[string]bool{}
		for i := 0; i < items.Len(); i++ {
			at := pos.at
			if i < len(pos.items) {
				at = pos.items[i]
			}
			host, data, err := hostItem(items.Index(i))
			if err != nil {
				return nil, fmt.Errorf("%s: group %s, item %d: %w", at, gname, i+1, err)
			}
			key, err := canonical(host)
			if err != nil {
				return nil, fmt.Errorf("%s: host %q: %w", at, host, err)
			}
			if inGroup[key] {
				return nil, fmt.Errorf("%s: host %q is named twice in group %s", at, host, gname)
			}
			inGroup[key] = true
			idx, seen := byKey[key]
			if !seen {
				idx = len(inv.Hosts)
				byKey[key] = idx
				inv.Hosts = append(inv.Hosts, Entry{Name: host, Pos: at, Data: map[string]any{}, DataPos: map[string]string{}})
			}
			e := &inv.Hosts[idx]
			e.Groups = append(e.Groups, gname)
			for k, v := range data {
				if prev, dup := e.DataPos[k]; dup && !equalData(e.Data[k], v) {
					return nil, fmt.Errorf("%s: host %q: data key %s is also set, differently, at %s", at, host, k, prev)
				}
				e.Data[k], e.DataPos[k] = v, at
			}
			g.Hosts = append(g.Hosts, e.Name)
		}
		inv.Groups = append(inv.Groups, g)
	}
	if err := applyGroupData(fsys, display, inv); err != nil {
		return nil, err
	}
	return inv, nil
}

// checkUTF8 refuses a file that is not UTF-8 text, naming the line of the
// first bad byte: the Starlark scanner would turn such bytes into U+FFFD,
// and a host name would silently differ from the file.
func checkUTF8(display string, src []byte) error {
	for i, line := 0, 1; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Errorf("%s:%d: the file is not valid UTF-8 text (byte %#02x); save it as UTF-8", display, line, src[i])
		}
		if r == '\n' {
			line++
		}
		i += n
	}
	return nil
}

// execData parses and runs an inventory or group data file, once, and
// returns its public globals and where each is assigned.
func execData(display string, src []byte) (starlark.StringDict, map[string]groupPos, error) {
	thread := &starlark.Thread{Name: "inventory " + display}
	thread.SetMaxExecutionSteps(10_000_000)
	thread.Load = func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
		return nil, fmt.Errorf("load(%q): inventory files cannot load modules", module)
	}
	if err := checkUTF8(display, src); err != nil {
		return nil, nil, err
	}
	f, prog, err := starlark.SourceProgramOptions(&fileOptions, display, src, func(string) bool { return false })
	if err != nil {
		return nil, nil, err
	}
	globals, err := prog.Init(thread, nil)
	if err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			return nil, nil, fmt.Errorf("%s", strings.TrimSpace(ee.Backtrace()))
		}
		return nil, nil, err
	}
	out := starlark.StringDict{}
	for k, v := range globals {
		if !strings.HasPrefix(k, "_") {
			out[k] = v
		}
	}
	return out, itemPositions(f), nil
}

// groupPos is where a group is assigned, and where each item of its list
// literal is.
type groupPos struct {
	at    string
	line  int32
	items []string
}

// itemPositions finds the last top-level assignment of each name and, when
// it is a list or tuple literal, the position of each item.
func itemPositions(f *syntax.File) map[string]groupPos {
	out := map[string]groupPos{}
	for _, stmt := range f.Stmts {
		as, ok := stmt.(*syntax.AssignStmt)
		if !ok {
			continue
		}
		id, ok := as.LHS.(*syntax.Ident)
		if !ok {
			continue
		}
		start, _ := as.Span()
		p := groupPos{at: posString(start), line: start.Line}
		var elems []syntax.Expr
		switch rhs := as.RHS.(type) {
		case *syntax.ListExpr:
			elems = rhs.List
		case *syntax.TupleExpr:
			elems = rhs.List
		case *syntax.ParenExpr:
			if t, ok := rhs.X.(*syntax.TupleExpr); ok {
				elems = t.List
			}
		}
		for _, e := range elems {
			s, _ := e.Span()
			p.items = append(p.items, posString(s))
		}
		out[id.Name] = p
	}
	return out
}

func posString(p syntax.Position) string {
	return fmt.Sprintf("%s:%d", p.Filename(), p.Line)
}

// sortedByPos returns the names of globals in the order they are assigned
// in the file (names assigned otherwise, e.g. in a loop, come last, sorted).
func sortedByPos(globals starlark.StringDict, positions map[string]groupPos) []string {
	names := make([]string, 0, len(globals))
	for n := range globals {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		pi, iok := positions[names[i]]
		pj, jok := positions[names[j]]
		switch {
		case iok && jok && pi.line != pj.line:
			return pi.line < pj.line
		case iok != jok:
			return iok
		}
		return names[i] < names[j]
	})
	return names
}

// hostItem reads one item of a group: "name" or (name, {data}).
func hostItem(v starlark.Value) (string, map[string]any, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), nil, nil
	case starlark.Tuple, *starlark.List:
		seq := v.(starlark.Indexable)
		if seq.Len() != 2 {
			return "", nil, fmt.Errorf("a host with data is a pair (name, {data}), got %d elements", seq.Len())
		}
		name, ok := seq.Index(0).(starlark.String)
		if !ok {
			return "", nil, fmt.Errorf("a host name must be a string, got %s", seq.Index(0).Type())
		}
		d, ok := seq.Index(1).(*starlark.Dict)
		if !ok {
			return "", nil, fmt.Errorf("host %q: its data must be a dict, got %s", string(name), seq.Index(1).Type())
		}
		data, err := starvalue.FromStarlark(d, starvalue.Data)
		if err != nil {
			return "", nil, fmt.Errorf("host %q: %w", string(name), err)
		}
		return string(name), data.(map[string]any), nil
	}
	return "", nil, fmt.Errorf("a host is a name (\"web1\", \"@ssh/db1\") or a pair (name, {data}), got %s", v.Type())
}

// applyGroupData merges group_data/all.star and group_data/GROUP.star
// under each host's own data.
func applyGroupData(fsys fs.FS, display string, inv *Inventory) error {
	dir := filepath.Join(filepath.Dir(display), "group_data")
	entries, err := fs.ReadDir(fsys, "group_data")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inventory: %w", unwrapPathError(err, dir))
	}
	groups := map[string]bool{}
	var names []string
	for _, g := range inv.Groups {
		groups[g.Name] = true
		names = append(names, g.Name)
	}
	type layer struct {
		data map[string]any
		pos  map[string]string
	}
	layers := map[string]layer{}
	for _, de := range entries {
		gname, ok := strings.CutSuffix(de.Name(), ".star")
		if !ok || de.IsDir() {
			continue
		}
		file := filepath.Join(dir, de.Name())
		if gname != "all" && !groups[gname] {
			return fmt.Errorf("%s: there is no group %s in %s (groups: %s)", file, gname, display, strings.Join(names, ", "))
		}
		src, err := fs.ReadFile(fsys, "group_data/"+de.Name())
		if err != nil {
			return fmt.Errorf("inventory: %w", unwrapPathError(err, file))
		}
		globals, positions, err := execData(file, src)
		if err != nil {
			return err
		}
		l := layer{data: map[string]any{}, pos: map[string]string{}}
		for k, v := range globals {
			if _, isFunc := v.(starlark.Callable); isFunc {
				continue
			}
			gv, err := starvalue.FromStarlark(v, starvalue.Data)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", positions[k].at, k, err)
			}
			l.data[k] = gv
			l.pos[k] = file
			if p, ok := positions[k]; ok {
				l.pos[k] = p.at
			}
		}
		layers[gname] = l
	}
	for i := range inv.Hosts {
		e := &inv.Hosts[i]
		// Weakest first: all, then the host's groups from last to first,
		// so that the first group wins; then the host's own data.
		order := []string{"all"}
		for j := len(e.Groups) - 1; j >= 0; j-- {
			order = append(order, e.Groups[j])
		}
		data, pos := map[string]any{}, map[string]string{}
		for _, gname := range order {
			for k, v := range layers[gname].data {
				data[k], pos[k] = v, layers[gname].pos[k]
			}
		}
		for k, v := range e.Data {
			data[k], pos[k] = v, e.DataPos[k]
		}
		e.Data, e.DataPos = data, pos
	}
	return nil
}

func equalData(a, b any) bool { return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) }
