package builtins

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Starlark's own builtins (go.starlark.net's Universe) run to the end once
// called: a thread's Cancel is seen only between steps of Starlark code, so
// sorted() of millions of items or str() of a huge list ran on for seconds
// past a deadline, and list(range(1 << 62)) crashed on an allocation of the
// range's whole length. Predeclared shadows the builtins that walk or copy
// a whole value with versions that poll the thread's context (WithContext)
// every pollEvery items and refuse to allocate more than MaxElements items
// at once. Their results and messages are otherwise those of Universe.
//
// Not covered, because they are operators or methods of built-in types that
// a Go program cannot replace: x.extend(y), x += y, "%s" % x,
// "{}".format(x), x == y and "in" on huge values, and sep.join(x). They are
// fast per item but take as long as their values are large.

// MaxElements is the most items list(), tuple(), sorted(), enumerate(),
// reversed(), zip(), bytes(), set() and dict() make of a value of known
// length (a range): 1<<28 items take 4 GiB or more.
const MaxElements = 1 << 28

// pollEvery is how many items a long builtin handles between two looks at
// its context.
const pollEvery = 1 << 10

// WithContext binds ctx to a thread that has no host, such as one running
// a module's top level: long builtins stop when ctx is done. WithHost
// binds the context of a host's thread.
func WithContext(thread *starlark.Thread, ctx context.Context) {
	thread.SetLocal(contextKey, ctx)
}

// poll tells a long builtin when to stop: when the context bound to its
// thread is done. It is used by one call on one goroutine.
type poll struct {
	name string
	ctx  context.Context // nil: never stops
	n    int
	err  error // why it stopped
}

func newPoll(thread *starlark.Thread, name string) *poll {
	ctx, _ := thread.Local(contextKey).(context.Context)
	return &poll{name: name, ctx: ctx}
}

// stop reports whether the builtin must stop; it looks at the context once
// every pollEvery calls. After it returns true, p.err says why.
func (p *poll) stop() bool {
	if p.err != nil {
		return true
	}
	if p.ctx == nil {
		return false
	}
	if p.n++; p.n%pollEvery != 0 {
		return false
	}
	if p.ctx.Err() != nil {
		p.err = fmt.Errorf("%s: cancelled: %w", p.name, context.Cause(p.ctx))
		return true
	}
	return false
}

// iterable is an Iterable whose iterators end early once its poll stops.
type iterable struct {
	starlark.Iterable
	p *poll
}

// sequence is an iterable of known length.
type sequence struct {
	iterable
	n int
}

func (s sequence) Len() int { return s.n }

func (it iterable) Iterate() starlark.Iterator {
	return &iterator{it.Iterable.Iterate(), it.p}
}

type iterator struct {
	starlark.Iterator
	p *poll
}

func (it *iterator) Next(v *starlark.Value) bool { return !it.p.stop() && it.Iterator.Next(v) }

// polled returns v as an iterable that stops with p, or v itself when it
// is not iterable or is a mapping (dict(m) reads a mapping's items). With
// withLen, the iterable keeps v's length, so that the builtin can allocate
// its result at once.
func polled(v starlark.Value, p *poll, withLen bool) starlark.Value {
	it, ok := v.(starlark.Iterable)
	if _, mapping := v.(starlark.IterableMapping); !ok || mapping {
		return v
	}
	if n := starlark.Len(v); n >= 0 && withLen {
		return sequence{iterable{it, p}, n}
	}
	return iterable{it, p}
}

// tooLarge refuses to make n items of v at once.
func tooLarge(name string, v starlark.Value, n int) error {
	if n <= MaxElements {
		return nil
	}
	return fmt.Errorf("%s: %s too large: %d elements, at most %d", name, v.Type(), n, MaxElements)
}

// checkSize refuses args of which builtin name would make more than
// MaxElements items: the length of its iterable argument, or for zip the
// shortest of them.
func checkSize(name string, args starlark.Tuple) error {
	if len(args) == 0 {
		return nil
	}
	rows := -1
	for i, a := range args {
		if _, ok := a.(starlark.Iterable); !ok {
			return nil // a string, or an error Universe's builtin reports
		}
		if n := starlark.Len(a); i == 0 || n < rows {
			rows = n
		}
		if name != "zip" {
			break
		}
	}
	return tooLarge(name, args[0], rows)
}

// polledBuiltin wraps the Universe builtin name: its iterable arguments
// stop when the thread's context is done and, when allocates is set, a
// value of more than MaxElements items is refused.
func polledBuiltin(name string, allocates bool) *starlark.Builtin {
	b := starlark.Universe[name].(*starlark.Builtin)
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		if allocates {
			if err := checkSize(name, args); err != nil {
				return nil, err
			}
		}
		p := newPoll(thread, name)
		wrapped := make(starlark.Tuple, len(args))
		for i, a := range args {
			// zip of known lengths would go on calling Next after a stop.
			wrapped[i] = polled(a, p, name != "zip")
		}
		// Called directly, not through starlark.Call: the thread already
		// has this builtin's frame, and errors read as Universe's.
		v, err := b.CallInternal(thread, wrapped, kw)
		if p.err != nil {
			return nil, p.err
		}
		return v, err
	})
}

// universe returns the replacements of Universe builtins, by name.
func universe() starlark.StringDict {
	d := starlark.StringDict{
		"sorted": starlark.NewBuiltin("sorted", starSorted),
		"str":    starlark.NewBuiltin("str", starStr),
		"repr":   starlark.NewBuiltin("repr", starRepr),
		"print":  starlark.NewBuiltin("print", starPrint),
	}
	for _, name := range []string{"list", "tuple", "enumerate", "reversed", "zip", "bytes", "set", "dict"} {
		d[name] = polledBuiltin(name, true)
	}
	for _, name := range []string{"any", "all", "min", "max"} {
		d[name] = polledBuiltin(name, false)
	}
	return d
}

// sortAborted is the panic that ends a sort early; sorted recovers it.
type sortAborted struct{}

// starSorted is Universe's sorted, whose sort stops with the thread's context.
// Like Universe's, it is stable, and reverse=True keeps equal items in
// their original order.
func starSorted(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (result starlark.Value, err error) {
	var it starlark.Iterable
	var key starlark.Callable
	var reverse bool
	if err := starlark.UnpackArgs("sorted", args, kw, "iterable", &it, "key?", &key, "reverse?", &reverse); err != nil {
		return nil, err
	}
	if err := tooLarge("sorted", it, starlark.Len(it)); err != nil {
		return nil, err
	}
	p := newPoll(thread, "sorted")
	s := &sortSlice{p: p}
	if n := starlark.Len(it); n > 0 {
		s.values = make([]starlark.Value, 0, n)
	}
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for !p.stop() && iter.Next(&x) {
		s.values = append(s.values, x)
	}
	if key != nil && p.err == nil {
		s.keys = make([]starlark.Value, len(s.values))
		for i, v := range s.values {
			if p.stop() {
				return nil, p.err // a builtin key does not see the thread's Cancel
			}
			if s.keys[i], err = starlark.Call(thread, key, starlark.Tuple{v}, nil); err != nil {
				return nil, err // as is, to keep the key function's backtrace
			}
		}
	}
	if p.err == nil {
		s.sort(reverse)
	}
	if p.err != nil {
		return nil, p.err
	}
	if s.err != nil {
		return nil, s.err
	}
	return starlark.NewList(s.values), nil
}

type sortSlice struct {
	keys   []starlark.Value // nil: the values are the keys
	values []starlark.Value
	p      *poll
	err    error // the first failed comparison
}

// sort sorts s, stopping at the first failed comparison or when its poll
// stops: a sort from the standard library cannot be left but by a panic.
func (s *sortSlice) sort(reverse bool) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(sortAborted); !ok {
				panic(v)
			}
		}
	}()
	if reverse {
		sort.Stable(sort.Reverse(s))
	} else {
		sort.Stable(s)
	}
}

func (s *sortSlice) Len() int { return len(s.values) }

func (s *sortSlice) Less(i, j int) bool {
	keys := s.keys
	if keys == nil {
		keys = s.values
	}
	ok, err := starlark.Compare(syntax.LT, keys[i], keys[j])
	if err != nil {
		s.err = err
	}
	if s.err != nil || s.p.stop() {
		panic(sortAborted{})
	}
	return ok
}

func (s *sortSlice) Swap(i, j int) {
	if s.keys != nil {
		s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	}
	s.values[i], s.values[j] = s.values[j], s.values[i]
}

// starStr is Universe's str, whose writing of lists, tuples, dicts and sets
// stops with the thread's context.
func starStr(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if len(args) == 1 && len(kw) == 0 {
		switch args[0].(type) {
		case starlark.String, starlark.Bytes:
		default:
			return writeString(thread, "str", args[0])
		}
	}
	return starlark.Universe["str"].(*starlark.Builtin).CallInternal(thread, args, kw)
}

// starRepr is Universe's repr, interruptible as str is.
func starRepr(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackPositionalArgs("repr", args, kw, 1, &x); err != nil {
		return nil, err
	}
	return writeString(thread, "repr", x)
}

// starPrint is Universe's print, interruptible as str is.
func starPrint(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	sep := " "
	if err := starlark.UnpackArgs("print", nil, kw, "sep?", &sep); err != nil {
		return nil, err
	}
	w := &writer{p: newPoll(thread, "print")}
	for i, v := range args {
		if i > 0 {
			w.WriteString(sep)
		}
		if s, ok := starlark.AsString(v); ok {
			w.WriteString(s)
		} else if b, ok := v.(starlark.Bytes); ok {
			w.WriteString(string(b))
		} else {
			w.value(v, nil)
		}
	}
	if w.p.err != nil {
		return nil, w.p.err
	}
	return starlark.Universe["print"].(*starlark.Builtin).CallInternal(thread, starlark.Tuple{starlark.String(w.String())}, nil)
}

func writeString(thread *starlark.Thread, name string, v starlark.Value) (starlark.Value, error) {
	w := &writer{p: newPoll(thread, name)}
	w.value(v, nil)
	if w.p.err != nil {
		return nil, w.p.err
	}
	return starlark.String(w.String()), nil
}

// writer writes values as Starlark's String methods do, looking at its
// poll for every item of a list, tuple, dict or set.
type writer struct {
	strings.Builder
	p *poll
}

// value writes v; path holds the lists and dicts being written, so that
// one that contains itself is written as [...] or {...}. It reports false
// when the poll stopped it.
func (w *writer) value(v starlark.Value, path []starlark.Value) bool {
	if w.p.stop() {
		return false
	}
	switch v := v.(type) {
	case *starlark.List:
		if inPath(path, v) {
			w.WriteString("[...]")
			return true
		}
		inner := append(path, v) // once, not once per item
		return w.items("[", "]", v.Len(), func(i int) bool { return w.value(v.Index(i), inner) })
	case starlark.Tuple:
		end := ")"
		if len(v) == 1 {
			end = ",)"
		}
		return w.items("(", end, len(v), func(i int) bool { return w.value(v[i], path) })
	case *starlark.Dict:
		if inPath(path, v) {
			w.WriteString("{...}")
			return true
		}
		keys := v.Keys()
		inner := append(path, v)
		return w.items("{", "}", len(keys), func(i int) bool {
			x, _, _ := v.Get(keys[i])
			if !w.value(keys[i], path) {
				return false
			}
			w.WriteString(": ")
			return w.value(x, inner)
		})
	case *starlark.Set:
		var elems []starlark.Value
		iter := v.Iterate()
		defer iter.Done()
		var x starlark.Value
		for iter.Next(&x) {
			elems = append(elems, x)
		}
		return w.items("set([", "])", len(elems), func(i int) bool { return w.value(elems[i], path) })
	default:
		w.WriteString(v.String())
		return true
	}
}

// items writes n items between start and end, separated by commas; item
// writes the i-th and reports false to stop.
func (w *writer) items(start, end string, n int, item func(i int) bool) bool {
	w.WriteString(start)
	for i := range n {
		if i > 0 {
			w.WriteString(", ")
		}
		if !item(i) {
			return false
		}
	}
	w.WriteString(end)
	return true
}

func inPath(path []starlark.Value, v starlark.Value) bool { return slices.Contains(path, v) }
