package inventory

// This file reads the host_vars/ and group_vars/ files beside an
// Ansible inventory.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// varsFiles finds the vars files of name in dir as Ansible's host_group_vars
// plugin does: the first of NAME, NAME.yml, NAME.yaml, NAME.json that
// exists; when it is a directory, every file in it (recursively, sorted,
// skipping hidden files and other extensions).
func varsFiles(dir, name string) ([]string, error) {
	for _, ext := range []string{"", ".yml", ".yaml", ".json"} {
		p := filepath.Join(dir, name+ext)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		if !fi.IsDir() {
			return []string{p}, nil
		}
		var out []string
		err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			base := d.Name()
			if f != p && strings.HasPrefix(base, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || strings.HasSuffix(base, "~") {
				return nil
			}
			switch filepath.Ext(base) {
			case "", ".yml", ".yaml", ".json":
				out = append(out, f)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		return out, nil
	}
	return nil, nil
}

// readVarsFile reads one host_vars or group_vars file: a YAML mapping.
func readVarsFile(path string) (map[string]ansibleVal, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", unwrapPathError(err, path))
	}
	if isVault(src) {
		return nil, vaultError(path)
	}
	root, err := parseYAMLDoc(path, src)
	if err != nil || root == nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a vars file is a mapping of variable names to values, got %s", path, root.Line, yamlKind(root))
	}
	return yamlVars(path, root, filepath.Base(path))
}

// varsLoader reads and caches the vars of one directory (host_vars or
// group_vars) by host or group name.
type varsLoader struct {
	dir   string
	cache map[string]map[string]ansibleVal
}

func (l *varsLoader) vars(name string) (map[string]ansibleVal, error) {
	if v, ok := l.cache[name]; ok {
		return v, nil
	}
	files, err := varsFiles(l.dir, name)
	if err != nil {
		return nil, err
	}
	out := map[string]ansibleVal{}
	for _, f := range files {
		v, err := readVarsFile(f)
		if err != nil {
			return nil, err
		}
		for k, x := range v {
			out[k] = x
		}
	}
	l.cache[name] = out
	return out, nil
}
