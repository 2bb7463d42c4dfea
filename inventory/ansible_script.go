package inventory

// This file runs Ansible dynamic inventory scripts and reads their JSON.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/star-deploy/star-deploy/internal/jsondata"
)

// Limits of what an inventory script may print. Beyond maxScriptOutput
// the output is an error (memory stays bounded whatever the script
// prints); of standard error the last maxScriptStderr bytes are quoted.
const (
	maxScriptOutput = 64 << 20
	maxScriptStderr = 2 << 10
	// scriptWaitDelay bounds the wait for a killed script's children that
	// still hold its output open.
	scriptWaitDelay = 2 * time.Second
)

// isScript reports whether path is an Ansible dynamic inventory script:
// an executable regular file that starts with #! or does not have the
// extension of a static inventory (.ini, .cfg, .yml, .yaml, .json).
// An executable hosts.ini without #! stays a static inventory, which
// Ansible would also read after failing to run it.
// IsScript reports whether Load runs path as a dynamic inventory script.
func IsScript(path string) bool { return isScript(path) }

func isScript(path string) bool {
	if strings.ContainsAny(path, ",@") {
		return false
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return false
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".ini", ".cfg", ".yml", ".yaml", ".json":
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		head := make([]byte, 2)
		n, _ := f.Read(head)
		return string(head[:n]) == "#!"
	}
	return true
}

// LoadAnsibleScript runs the Ansible dynamic inventory script at path with
// --list, and with --host NAME for each host when the output has no
// _meta.hostvars, and reads its JSON as Ansible's script plugin does: each
// top-level key but _meta is a group whose value is a list of host names,
// or a mapping with hosts (a list), vars (a mapping) and children (a list
// of group names); a mapping with none of those keys is a host of the
// group's name with those variables. _meta.hostvars maps host names to
// their variables. Then host_vars/ and group_vars/ beside the script,
// precedence and the ansible_* mapping apply as for LoadAnsible. Host
// names are taken as they are (no ranges, no :PORT).
//
// A script that cannot run, exits non-zero, prints more than 64 MiB or
// prints something other than a JSON object is an error naming the script
// and quoting the end of what it wrote to standard error. The script runs
// in the current directory with the environment of star-deploy, and is
// killed when ctx ends.
func LoadAnsibleScript(ctx context.Context, path string) (*Inventory, error) {
	out, said, err := runScript(ctx, path, "--list")
	if err != nil {
		return nil, err
	}
	ai := newAnsibleInv(path)
	hostvars, err := ai.scriptList(out)
	if err != nil {
		return nil, fmt.Errorf("inventory script %s --list: %w%s", path, err, said)
	}
	for _, name := range ai.hostOrder {
		var vars map[string]any
		if hostvars != nil {
			v, ok := hostvars[name]
			if ok && v != nil {
				if vars, ok = v.(map[string]any); !ok {
					return nil, fmt.Errorf("inventory script %s: _meta.hostvars of host %s must be an object of variables, got %s", path, name, jsondata.Kind(v))
				}
			}
		} else {
			out, said, err := runScript(ctx, path, "--host", name)
			if err != nil {
				return nil, err
			}
			if len(bytes.TrimSpace(out)) > 0 {
				v, err := decodeJSON(out)
				if err != nil {
					return nil, fmt.Errorf("inventory script %s --host %s: %w%s", path, name, err, said)
				}
				var ok bool
				if vars, ok = v.(map[string]any); !ok {
					return nil, fmt.Errorf("inventory script %s --host %s: want an object of variables, got %s%s", path, name, jsondata.Kind(v), said)
				}
			}
		}
		h := ai.hosts[name]
		for k, v := range vars {
			h.vars[k] = ansibleVal{v, path}
		}
	}
	return ai.resolve(filepath.Dir(path))
}

// scriptList reads the output of --list into ai and returns
// _meta.hostvars, nil when it is absent (then each host is asked with
// --host).
func (ai *ansibleInv) scriptList(out []byte) (map[string]any, error) {
	keys, vals, err := orderedObject(out)
	if err != nil {
		return nil, err
	}
	var hostvars map[string]any
	for i, name := range keys {
		v := vals[i]
		if name == "_meta" {
			meta, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("_meta must be an object, got %s", jsondata.Kind(v))
			}
			if hv, ok := meta["hostvars"]; ok {
				if hostvars, ok = hv.(map[string]any); !ok {
					return nil, fmt.Errorf("_meta.hostvars must be an object of host names, got %s", jsondata.Kind(hv))
				}
			}
			continue
		}
		if err := ai.scriptGroup(name, v); err != nil {
			return nil, err
		}
	}
	return hostvars, nil
}

// scriptGroup reads one group of --list output.
func (ai *ansibleInv) scriptGroup(name string, v any) error {
	if name == "" {
		return fmt.Errorf("a group name must be a non-empty string")
	}
	pos := ai.file
	g := ai.group(name, pos)
	g.defined = true
	body, ok := v.(map[string]any)
	switch {
	case !ok:
		body = map[string]any{"hosts": v}
	case !hasAny(body, "hosts", "vars", "children"):
		body = map[string]any{"hosts": []any{name}, "vars": body}
	}
	err := eachName(name, "hosts", body["hosts"], "host names", "a host name", func(hn string) error {
		ai.addHost(g, hn, pos, nil)
		return nil
	})
	if err != nil {
		return err
	}
	if vv, ok := body["vars"]; ok && vv != nil {
		vars, ok := vv.(map[string]any)
		if !ok {
			return fmt.Errorf("group %s: vars must be an object of variables, got %s", name, jsondata.Kind(vv))
		}
		for k, x := range vars {
			g.vars[k] = ansibleVal{x, pos}
		}
	}
	return eachName(name, "children", body["children"], "group names", "a child group name", func(cn string) error {
		if cn == "all" {
			return fmt.Errorf("group all cannot be a child of %s: remove it", name)
		}
		ai.group(cn, pos).defined = true
		g.addChild(cn, pos)
		return nil
	})
}

// eachName calls fn with each name of v, the key list of group's --list
// output: a list of non-empty strings (of names them for the error), or
// nil for none. It stops at the first error, fn's or its own about item.
func eachName(group, key string, v any, of, item string, fn func(name string) error) error {
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		return fmt.Errorf("group %s: %s must be a list of %s, got %s", group, key, of, jsondata.Kind(v))
	}
	for _, x := range l {
		s, ok := x.(string)
		if !ok || s == "" {
			return fmt.Errorf("group %s: %s must be a non-empty string, got %s", group, item, jsondata.Kind(x))
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// runScript runs path with args and returns its standard output and, for
// errors about that output, the end of its standard error (": it printed
// on standard error:\n...", or "" when it printed nothing there).
func runScript(ctx context.Context, path string, args ...string) (stdout []byte, said string, err error) {
	abs, err := filepath.Abs(path) // never looked up in PATH
	if err != nil {
		return nil, "", fmt.Errorf("inventory script %s: %w", path, err)
	}
	cmdline := strings.Join(append([]string{path}, args...), " ")
	cmd := exec.CommandContext(ctx, abs, args...)
	var out boundedBuffer
	out.max = maxScriptOutput
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = scriptWaitDelay
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, "", fmt.Errorf("inventory script %s: %w", cmdline, ctx.Err())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		said = ": it printed on standard error:\n" + s
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return nil, "", fmt.Errorf("inventory script %s failed (%v)%s", cmdline, exit.ProcessState, said)
	case err != nil:
		return nil, "", fmt.Errorf("inventory script %s could not run: %w%s", cmdline, err, said)
	case out.over:
		return nil, "", fmt.Errorf("inventory script %s printed more than %d MiB; an inventory must be smaller", cmdline, maxScriptOutput>>20)
	}
	if !utf8.Valid(out.Bytes()) {
		return nil, "", fmt.Errorf("inventory script %s printed something that is not UTF-8 text%s", cmdline, said)
	}
	return out.Bytes(), said, nil
}

// orderedObject decodes a JSON object, keeping the order of its keys
// (group order is host order, as in Ansible, whose dicts keep it).
func orderedObject(src []byte) (keys []string, vals []any, err error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("the output is not JSON: %v", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("the output must be a JSON object of groups, got %s", tokKind(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("the output is not JSON: %v", jsonErr(err))
		}
		var raw any
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("the output is not JSON: %v", jsonErr(err))
		}
		v, err := jsondata.Numbers(raw)
		if err != nil {
			return nil, nil, err
		}
		keys, vals = append(keys, tok.(string)), append(vals, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("the output is not JSON: %v", jsonErr(err))
	}
	if _, err := dec.Token(); err == nil {
		return nil, nil, fmt.Errorf("the output is not JSON: more follows the object")
	}
	return keys, vals, nil
}

// decodeJSON decodes one JSON value into inventory data.
func decodeJSON(src []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("the output is not JSON: %v", jsonErr(err))
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("the output is not JSON: more follows the value")
	}
	return jsondata.Numbers(raw)
}

// hasAny reports whether m has one of keys.
func hasAny(m map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

func jsonErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("it is empty or ends too early")
	}
	return err
}

func tokKind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "a list"
		}
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// boundedBuffer keeps up to max bytes and notes that more came.
type boundedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil // keep reading, so the script never blocks
	}
	return b.Buffer.Write(p)
}

// tailBuffer keeps the last maxScriptStderr bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	if len(p) > maxScriptStderr {
		t.b = t.b[:0]
		p = p[len(p)-maxScriptStderr:]
	}
	t.b = append(t.b, p...)
	if len(t.b) > maxScriptStderr {
		t.b = append(t.b[:0], t.b[len(t.b)-maxScriptStderr:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.ToValidUTF8(string(t.b), "?") }
