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
	if h.Local == nil {
		return nil, fmt.Errorf("local_tree: listing local directories is not available here")
	}
	root, err := localPath(thread, h, dir, true)
	if err != nil {
		return nil, fmt.Errorf("local_tree: %w", err)
	}
	type entry struct {
		path, typ string
		mode      fs.FileMode
	}
	var entries []entry
	// Breadth first, with a queue of directories still to list.
	for queue := []string{""}; len(queue) > 0; queue = queue[1:] {
		list, err := h.Local.ReadDir(path.Join(root, queue[0]))
		if err != nil {
			return nil, fmt.Errorf("local_tree: %w", err)
		}
		for _, e := range list {
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("local_tree: %w", err)
			}
			en := entry{path: path.Join(queue[0], e.Name()), typ: "other", mode: info.Mode().Perm()}
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				en.typ = "link"
			case info.IsDir():
				en.typ = "directory"
				queue = append(queue, en.path)
			case info.Mode().IsRegular():
				en.typ = "file"
			}
			entries = append(entries, en)
		}
	}
	// Sorted by path, parents come before their children.
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	out := make([]starlark.Value, len(entries))
	for i, e := range entries {
		out[i] = newStruct("entry", starlark.StringDict{
			"path": starlark.String(e.path),
			"type": starlark.String(e.typ),
			"mode": starlark.String(formatMode(e.mode)),
		})
	}
	return starlark.NewList(out), nil
}
