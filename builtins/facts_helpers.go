package builtins

// The helpers the fact readers share: probes whose exit status says
// something, and the builders of the Starlark values they return.

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/star-deploy/star-deploy/connectors"
)

// readFunc reads a fact: factDef.read.
type readFunc = func(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error)

// probeResult runs script and returns its result, failing only when the
// command could not run at all or max_output cut its stdout: the exit
// status is the caller's to read.
func (h *Host) probeResult(ctx context.Context, ctl Control, script string) (connectors.Result, error) {
	res, err := h.run(ctx, script, ctl, "")
	if err == nil {
		err = whole(res)
	}
	return res, err
}

// probeExit runs script and returns stdout and the exit code, failing only
// when the command could not run at all.
func (h *Host) probeExit(ctx context.Context, ctl Control, script string) (string, int, error) {
	res, err := h.probeResult(ctx, ctl, script)
	return string(res.Stdout), res.ExitCode, err
}

// probeFound runs script, whose exit status 3 says that what it reads is
// not there: found is false then, and the fact is None. Status 0 returns
// stdout; any other status is the error failed makes of the result.
func (h *Host) probeFound(ctx context.Context, ctl Control, script string, failed func(connectors.Result) error) (out string, found bool, err error) {
	res, err := h.probeResult(ctx, ctl, script)
	switch {
	case err != nil:
		return "", false, err
	case res.ExitCode == 0:
		return string(res.Stdout), true, nil
	case res.ExitCode == 3:
		return "", false, nil
	}
	return "", false, failed(res)
}

// exitedf is a failed for probeFound: the error of format and args, with
// the exit status as the last argument.
func exitedf(format string, args ...any) func(connectors.Result) error {
	return func(res connectors.Result) error {
		return fmt.Errorf(format, append(args, res.ExitCode)...)
	}
}

func newStruct(name string, d starlark.StringDict) *starlarkstruct.Struct {
	return starlarkstruct.FromStringDict(starlark.String(name), d)
}

func strList(ss []string) *starlark.List {
	vs := make([]starlark.Value, len(ss))
	for i, s := range ss {
		vs[i] = starlark.String(s)
	}
	return starlark.NewList(vs)
}

// optString is s as a Starlark string, or None when it is empty.
func optString(s string) starlark.Value {
	if s == "" {
		return starlark.None
	}
	return starlark.String(s)
}

// sortedDict is m as a Starlark dict in the order of its keys, each key
// made a Starlark value by key and each value by value.
func sortedDict[K cmp.Ordered, V any](m map[K]V, key func(K) starlark.Value, value func(V) starlark.Value) *starlark.Dict {
	d := starlark.NewDict(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		_ = d.SetKey(key(k), value(m[k]))
	}
	return d
}

func intDict[V any](m map[int]V, value func(V) starlark.Value) *starlark.Dict {
	return sortedDict(m, func(k int) starlark.Value { return starlark.MakeInt(k) }, value)
}

// structDict is m as a dict from string keys to what value makes of each
// of m's values.
func structDict[V any](m map[string]V, value func(V) starlark.Value) *starlark.Dict {
	return sortedDict(m, func(k string) starlark.Value { return starlark.String(k) }, value)
}

func stringDict(m map[string]string) *starlark.Dict {
	return structDict(m, func(v string) starlark.Value { return starlark.String(v) })
}

// valuer is a parsed record that makes its own Starlark value.
type valuer interface{ value() starlark.Value }

// valueList is the values of xs, in order.
func valueList[T valuer](xs []T) *starlark.List {
	var vs []starlark.Value
	for _, x := range xs {
		vs = append(vs, x.value())
	}
	return starlark.NewList(vs)
}

// keyedDict is the values of xs in a dict keyed by key, in xs' order (a
// later x of the same key wins).
func keyedDict[T valuer](xs []T, key func(T) string) *starlark.Dict {
	d := starlark.NewDict(len(xs))
	for _, x := range xs {
		_ = d.SetKey(starlark.String(key(x)), x.value())
	}
	return d
}
