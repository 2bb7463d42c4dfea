package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/connectors"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// defaultConfig is the config file read from the current directory when
// --config is not given.
const defaultConfig = "star-deploy.star"

// envPrefix starts the environment variable of each flag:
// STAR_DEPLOY_FAIL_PERCENT for --fail-percent.
const envPrefix = "STAR_DEPLOY_"

// configMaxSteps bounds the Starlark steps of a config file, so that a loop
// in it is an error rather than a hang.
const configMaxSteps = 1_000_000

// notSettable are the flags a config file or the environment cannot set.
var notSettable = []string{"help", "version", "config"}

// defaults are the flag defaults a config file and the environment give,
// as the text kong parses, by flag name; data holds the KEY=VALUE items of
// --data (config first, then the environment), which the --data flags
// override.
type defaults struct {
	text     map[string]string
	data     []string
	file     string                // the config file read, "" when none
	ignored  string                // why the default config file was not read, "" when it was or is not there
	modules  map[string]string     // the config file's modules: alias -> source
	settable map[string]*kong.Flag // the flags they may set, by name
}

// loadDefaults reads the config file (--config FILE in args, else
// star-deploy.star in the current directory if there is one) and the
// STAR_DEPLOY_* environment, and sets the defaults of parser's flags:
// flag > environment > config > built-in default.
func loadDefaults(parser *kong.Kong, args []string) (*defaults, error) {
	flags := settableFlags(parser)
	d := &defaults{text: map[string]string{}, settable: flags}
	path, explicit := configPath(args)
	src, err := os.ReadFile(path)
	if err == nil && !explicit {
		d.ignored = untrustedConfig(path)
	}
	switch {
	case d.ignored != "": // not read; parseGrammar prints why
	case err == nil:
		if err := d.readConfig(path, src, flags); err != nil {
			return nil, err
		}
		d.file = path
	case explicit || !errors.Is(err, fs.ErrNotExist):
		return nil, usagef("read the config file: %w", err)
	}
	if err := d.readEnv(flags); err != nil {
		return nil, err
	}
	for name, text := range d.text {
		flags[name].Default = text
		flags[name].HasDefault = true
	}
	return d, nil
}

// untrustedConfig says why the config file path, found in the current
// directory without --config, is not read: the directory or the file is
// writable by everyone, so anyone could have put it there (/tmp), as
// Ansible ignores an ansible.cfg in a world-writable directory. It is ""
// when the file may be read.
func untrustedConfig(path string) string {
	for _, p := range []string{".", path} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o002 == 0 {
			continue
		}
		what := "the current directory"
		if p == path {
			what = "it"
		}
		return fmt.Sprintf("star-deploy: not reading %s of the current directory: %s is writable by everyone, so anyone could have put it there; pass --config %s to read it anyway", path, what, path)
	}
	return ""
}

// settableFlags returns the flags a config file may set, by name.
func settableFlags(parser *kong.Kong) map[string]*kong.Flag {
	out := map[string]*kong.Flag{}
	for _, group := range parser.Model.AllFlags(false) {
		for _, f := range group {
			if !slices.Contains(notSettable, f.Name) {
				out[f.Name] = f
			}
		}
	}
	return out
}

// configPath returns the config file args name with --config, or the
// default one; explicit says whether it was named.
func configPath(args []string) (path string, explicit bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v, true
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return defaultConfig, false
}

// readConfig runs the config file src as pure Starlark (no builtins, no
// load) and takes each top-level name as the default of the flag it names,
// with underscores for dashes. Names starting with _ are private.
func (d *defaults) readConfig(path string, src []byte, flags map[string]*kong.Flag) error {
	f, prog, err := starlark.SourceProgramOptions(sdrt.FileOptions(), path, src, func(string) bool { return false })
	if err != nil {
		return usagef("config file: %w", err)
	}
	thread := &starlark.Thread{Name: "config " + path}
	thread.SetMaxExecutionSteps(configMaxSteps)
	globals, err := prog.Init(thread, nil)
	if err != nil {
		var evalErr *starlark.EvalError
		if errors.As(err, &evalErr) {
			err = errors.New(evalErr.Backtrace())
		}
		return usagef("config file %s: %w", path, err)
	}
	pos := bindings(f)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range globals {
			if !strings.HasPrefix(n, "_") && !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		where := fmt.Sprintf("%s:%d", path, pos[n].Line)
		if n == "modules" {
			m, err := moduleAliases(globals[n])
			if err != nil {
				return usagef("%s: modules: %w", where, err)
			}
			d.modules = m
			continue
		}
		flag, ok := flags[strings.ReplaceAll(n, "_", "-")]
		if !ok {
			return usagef("%s: %s is not a setting; %s", where, n, settingHint(n, flags))
		}
		if err := d.set(flag, globals[n]); err != nil {
			return usagef("%s: %s: %w", where, n, err)
		}
	}
	return nil
}

// bindings returns where each global of the resolved file f is first
// bound, as the resolver recorded it.
func bindings(f *syntax.File) map[string]syntax.Position {
	pos := map[string]syntax.Position{}
	for _, b := range f.Module.(*resolve.Module).Globals {
		pos[b.First.Name] = b.First.NamePos
	}
	return pos
}

// settingHint suggests the setting closest to name, or lists them all.
func settingHint(name string, flags map[string]*kong.Flag) string {
	var names []string
	for n := range flags {
		names = append(names, strings.ReplaceAll(n, "-", "_"))
	}
	slices.Sort(names)
	if best := connectors.Closest(name, names); best != "" {
		return fmt.Sprintf("did you mean %s?", best)
	}
	return "the settings are the long flags with _ for -: " + strings.Join(names, ", ")
}

// set takes v as the default of flag, checking its type.
func (d *defaults) set(flag *kong.Flag, v starlark.Value) error {
	if flag.Name == "data" {
		items, err := dataItems(v)
		d.data = append(d.data, items...)
		return err
	}
	text, err := flagText(flag, v)
	if err != nil {
		return err
	}
	d.text[flag.Name] = text
	return nil
}

// flagText returns v as the text kong parses for flag, or an error naming
// the type the flag wants.
func flagText(flag *kong.Flag, v starlark.Value) (string, error) {
	switch k := flagKind(flag); {
	case k == reflect.Bool:
		if b, ok := v.(starlark.Bool); ok {
			return strconv.FormatBool(bool(b)), nil
		}
		return "", fmt.Errorf("want a bool (True or False), got %s", v.Type())
	case isInt(k):
		if i, ok := v.(starlark.Int); ok {
			return i.String(), nil
		}
		return "", fmt.Errorf("want an int, got %s", v.Type())
	case k == reflect.String:
		if s, ok := starlark.AsString(v); ok {
			return s, nil
		}
		return "", fmt.Errorf("want a string, got %s", v.Type())
	case k == reflect.Slice:
		return listText(v)
	}
	return "", fmt.Errorf("cannot be set in a config file")
}

// listText returns a string or a list of strings as comma-separated text.
func listText(v starlark.Value) (string, error) {
	if s, ok := starlark.AsString(v); ok {
		return s, nil
	}
	seq, ok := v.(starlark.Indexable)
	if !ok {
		return "", fmt.Errorf("want a string or a list of strings, got %s", v.Type())
	}
	var items []string
	for i := range seq.Len() {
		s, ok := starlark.AsString(seq.Index(i))
		if !ok {
			return "", fmt.Errorf("want a string or a list of strings, got a %s in the list", seq.Index(i).Type())
		}
		items = append(items, s)
	}
	return strings.Join(items, ","), nil
}

// moduleAliases returns the config file's modules, a dict of names to
// sources: modules = {"web": "git+https://HOST/ORG/web-modules@v1.4.0"}.
// The sources are checked when a script loads one (modules.New).
func moduleAliases(v starlark.Value) (map[string]string, error) {
	dict, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("want a dict of names to sources, {\"web\": \"git+https://HOST/ORG/REPO@REF\"}, got %s", v.Type())
	}
	out := map[string]string{}
	for _, kv := range dict.Items() {
		k, ok1 := starlark.AsString(kv[0])
		src, ok2 := starlark.AsString(kv[1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("want string names and sources, got %s: %s", kv[0].Type(), kv[1].Type())
		}
		out[k] = src
	}
	return out, nil
}

// dataItems returns a dict of host data as KEY=VALUE items, in key order.
func dataItems(v starlark.Value) ([]string, error) {
	dict, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("want a dict of string keys to str, int or bool values, got %s", v.Type())
	}
	var items []string
	for _, kv := range dict.Items() {
		k, ok := starlark.AsString(kv[0])
		if !ok {
			return nil, fmt.Errorf("want string keys, got %s", kv[0].Type())
		}
		var text string
		switch val := kv[1].(type) {
		case starlark.String:
			text = string(val)
		case starlark.Int:
			text = val.String()
		case starlark.Bool:
			text = strconv.FormatBool(bool(val))
		default:
			return nil, fmt.Errorf("%s: want a str, int or bool value, got %s", k, kv[1].Type())
		}
		items = append(items, k+"="+text)
	}
	slices.Sort(items)
	return items, nil
}

// readEnv takes STAR_DEPLOY_<FLAG> variables over the config file. Bool and
// int values are checked here so that the error names the variable.
// STAR_DEPLOY_DATA holds KEY=VALUE items, one a line.
func (d *defaults) readEnv(flags map[string]*kong.Flag) error {
	for name, flag := range flags {
		env := envName(name)
		v, ok := os.LookupEnv(env)
		if !ok {
			continue
		}
		if name == "data" {
			for _, line := range strings.Split(v, "\n") {
				if line = strings.TrimSpace(line); line != "" {
					d.data = append(d.data, line)
				}
			}
			continue
		}
		switch k := flagKind(flag); {
		case k == reflect.Bool:
			if _, err := strconv.ParseBool(v); err != nil {
				return usagef("%s=%q: want true or false", env, v)
			}
		case isInt(k):
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return usagef("%s=%q: want an integer", env, v)
			}
		}
		d.text[name] = v
	}
	return nil
}

// flagKind is the kind of the value flag takes: for an optional flag (a
// pointer, like --fail-percent), the kind it points to.
func flagKind(flag *kong.Flag) reflect.Kind {
	t := flag.Target.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind()
}

// isInt reports whether a flag of kind k takes an integer.
func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64:
		return true
	}
	return false
}

// envName is the environment variable of the flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// helpValue formats a flag's help with its effective default and its
// environment variable.
func (d *defaults) helpValue(v *kong.Value) string {
	help := v.Help
	if v.Flag == nil || d.settable[v.Name] != v.Flag {
		return help // an argument, --help, --config, a flag of docs
	}
	def := ""
	if v.HasDefault {
		def = v.Default
	}
	if v.Name == "data" {
		def = strings.Join(d.data, " ")
	}
	if def != "" {
		help += " Default: " + def + "."
	}
	return help + " ($" + envName(v.Name) + ")"
}
