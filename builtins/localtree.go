package builtins

import (
	"fmt"
	"io/fs"
	"path"
	"sort"

	"go.starlark.net/starlark"
)

var localTreeSpec = &Spec{
	Name: "local_tree",
	Doc: "Lists a directory tree on the machine running star-deploy, as `files.sync` needs it. " +
		"A relative path is relative to the calling file, like `put(src=)`. Links are listed, not followed.",
	Params: []Param{
		{"dir", "str", "", "The local directory."},
	},
	Returns: "a list of structs with `.path` (relative to dir, `/`-separated), `.type` (`file`, `directory`, `link`, `other`) and `.mode` (`\"0644\"`), parents before their children",
	Example: `for e in local_tree("site"):
    print(e.path, e.type)`,
	Effects: EffectLocalFS,
	Fn:      localTreeFn,
}

func localTreeFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, err := HostFrom(thread, s.Name)
	if err != nil {
		return nil, err
	}
	var dir string
	if err := s.Unpack(args, kw, &dir); err != nil {
		return nil, err
	}
	if h.ReadLocalDir == nil {
		return nil, fmt.Errorf("local_tree: listing local directories is not available here")
	}
	root := localPath(thread, dir)
	var out []starlark.Value
	// An explicit stack instead of recursion; entries come back sorted.
	stack := []string{""}
	for len(stack) > 0 {
		rel := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		entries, err := h.ReadLocalDir(path.Join(root, rel))
		if err != nil {
			return nil, fmt.Errorf("local_tree: %w", err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		var subdirs []string
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("local_tree: %w", err)
			}
			p := path.Join(rel, e.Name())
			typ := "other"
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				typ = "link"
			case info.IsDir():
				typ = "directory"
				subdirs = append(subdirs, p)
			case info.Mode().IsRegular():
				typ = "file"
			}
			out = append(out, newStruct("entry", starlark.StringDict{
				"path": starlark.String(p),
				"type": starlark.String(typ),
				"mode": starlark.String(formatMode(info.Mode().Perm())),
			}))
		}
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	// Sorting by path puts parents before children.
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := out[i].(starlark.HasAttrs).Attr("path")
		b, _ := out[j].(starlark.HasAttrs).Attr("path")
		return a.(starlark.String) < b.(starlark.String)
	})
	return starlark.NewList(out), nil
}
