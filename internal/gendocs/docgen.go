package gendocs

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/all"
	"github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// Reference is everything the reference documents.
type Reference struct {
	Builtins   []*builtins.Spec
	Control    []builtins.Param
	Facts      []builtins.FactDoc
	Modules    []*Module // sorted by name
	Connectors []connectors.Factory
}

// Load gathers the reference from the code. It fails only when a stdlib
// module does not parse.
func Load() (*Reference, error) {
	r := &Reference{
		Builtins:   builtins.All(),
		Control:    builtins.ControlParams(),
		Facts:      builtins.FactDocs(),
		Connectors: all.Registry(all.Options{}).Factories(),
	}
	names, err := fs.Glob(stdlib.FS, "*.star")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		src, err := fs.ReadFile(stdlib.FS, name)
		if err != nil {
			return nil, fmt.Errorf("read stdlib %s: %w", name, err)
		}
		m, err := ParseModule(name, src)
		if err != nil {
			return nil, err
		}
		r.Modules = append(r.Modules, m)
	}
	return r, nil
}

// Problems lists the entries that lack a description or an example, each
// naming the entry.
func (r *Reference) Problems() []string {
	var out []string
	lacks := func(empty bool, problem string) {
		if empty {
			out = append(out, problem)
		}
	}
	for _, s := range r.Builtins {
		lacks(s.Doc == "", "builtin "+s.Name+": no Doc")
		lacks(s.Example == "", "builtin "+s.Name+": no Example")
		for _, p := range s.Params {
			lacks(p.Doc == "", "builtin "+s.Name+": parameter "+p.Name+" has no Doc")
		}
	}
	for _, p := range r.Control {
		lacks(p.Doc == "", "control argument "+p.Name+": no Doc")
	}
	for _, f := range r.Facts {
		lacks(f.Doc == "", "fact "+f.Name+": no Doc")
		lacks(f.Example == "", "fact "+f.Name+": no Example")
	}
	for _, m := range r.Modules {
		out = append(out, m.Problems...)
	}
	for _, f := range r.Connectors {
		lacks(f.Doc() == "", "connector @"+f.Scheme()+": no Doc")
		for _, fld := range f.Fields() {
			lacks(fld.Doc == "", "connector @"+f.Scheme()+": data key "+fld.Name+" has no Doc")
			lacks(exampleValue(fld) == "", "connector @"+f.Scheme()+": data key "+fld.Name+
				" has no example: none follows from its type and default; add \"e.g. VALUE\" to its Doc")
		}
	}
	return out
}

// A File is one generated Markdown file.
type File struct {
	Path string // relative to the docs directory, slash-separated: "stdlib/files.md"
	Data []byte
}

const notice = "<!-- Generated from the code by `make docs` (star-deploy docs --dir docs). Do not edit. -->\n\n"

// Files returns the reference as the files of the docs directory: README.md
// (the index), builtins.md, facts.md, stdlib/NAME.md and connectors.md.
func (r *Reference) Files() []File {
	out := []File{{Path: "README.md", Data: []byte(notice + r.index())}}
	for _, p := range r.pages() {
		out = append(out, File{Path: p.path, Data: []byte(notice + p.text)})
	}
	return out
}

// Write writes Files into dir, creating directories as needed. It removes
// nothing: a file that is no longer generated stays.
func (r *Reference) Write(dir string) error {
	for _, f := range r.Files() {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Topics lists what Markdown accepts besides "" (everything).
func (r *Reference) Topics() []string {
	t := []string{"builtins", "facts", "stdlib", "connectors"}
	for _, m := range r.Modules {
		t = append(t, m.Name)
	}
	return t
}

// Markdown returns the reference as one Markdown document: all of it when
// topic is "", else one topic (builtins, facts, stdlib, connectors) or one
// stdlib module.
func (r *Reference) Markdown(topic string) ([]byte, error) {
	var parts []string
	for _, p := range r.pages() {
		if topic == "" || topic == p.topic || topic == p.module {
			parts = append(parts, p.text)
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("unknown topic %q; want one of %s", topic, strings.Join(r.Topics(), ", "))
	}
	return []byte(strings.Join(parts, "\n")), nil
}

// A page is one part of the reference.
type page struct {
	path   string // under docs/
	topic  string // builtins, facts, stdlib, connectors
	module string // the stdlib module, for stdlib pages
	text   string
}

// pages renders every part of the reference.
func (r *Reference) pages() []page {
	out := []page{
		{path: "builtins.md", topic: "builtins", text: r.builtinsPage()},
		{path: "facts.md", topic: "facts", text: r.factsPage()},
	}
	for _, m := range r.Modules {
		out = append(out, page{path: "stdlib/" + m.Name + ".md", topic: "stdlib", module: m.Name, text: m.page()})
	}
	out = append(out, page{path: "connectors.md", topic: "connectors", text: r.connectorsPage()})
	for i := range out {
		out[i].text = strings.TrimRight(out[i].text, "\n") + "\n"
	}
	return out
}

// index is README.md: what the reference holds, with links.
func (r *Reference) index() string {
	b := newPage("star-deploy reference", "Generated from the code: the builtins' declarations, the facts, the docstrings of the "+
		"stdlib modules and the connectors' data keys. `star-deploy docs` prints all of it; "+
		"`star-deploy docs TOPIC` prints one part ("+strings.Join(r.Topics()[:4], ", ")+", or a stdlib module).")
	b.WriteString("- [Builtins](builtins.md): the functions predeclared in every deploy script, and the [control arguments](builtins.md#control-arguments) every operation accepts.\n")
	b.WriteString("- [Facts](facts.md): what `fact()` reads from a host.\n")
	b.WriteString("- The standard library, loaded with `load(\"@stdlib//NAME.star\", \"NAME\")`:\n")
	for _, m := range r.Modules {
		fmt.Fprintf(b, "  - [%s](stdlib/%s.md): %s\n", m.Name, m.Name, firstSentence(m.Doc))
	}
	b.WriteString("- [Connectors](connectors.md): how hosts are reached, and the data keys that configure each connector.\n")
	b.WriteString("- [Writing a connector](guide/writing-a-connector.md) (a handwritten guide): the connector contract, the plugin protocol, and the conformance suite.\n")
	b.WriteString("- [JSON events](guide/json-events.md) (handwritten, checked against the code by a test): every kind and field `--json` writes.\n")
	b.WriteString("- [Reusable modules](guide/modules.md) (a handwritten guide): load(\"git+https://…@REF//x.star\"), sources named in the config file, star-deploy.lock, the cache and the mod commands.\n")
	b.WriteString("- [Pull mode](guide/pull-mode.md) (a handwritten guide): bundles, signatures and star-deploy pull, with a systemd timer, cloud-init and a Kubernetes DaemonSet.\n")
	b.WriteString("- [Command line](cli.md): the `--help` of every command, written by `star-deploy docs --dir`.\n")
	return b.String()
}

// --- builtins and control arguments

func (r *Reference) builtinsPage() string {
	b := newPage("Builtins", "The functions predeclared in every deploy script. A dotted name is a member of a module value: "+
		"`re.sub` is the member `sub` of the predeclared module `re`. "+
		"Each builtin's **Effects** say what it may do: pure, read-host, write-host, local-fs (read or write files on the machine "+
		"running star-deploy; in an app's sandbox, read its files only), network and local-exec (run a program on the machine "+
		"running star-deploy: `rsync`). "+
		"An app that embeds star-deploy in a sandbox defines only the builtins whose effects it allows "+
		"(`runtime.Sandbox.Effects`); a script using another fails to compile with \"NAME is not available here\".")
	indexList(b, r.Builtins, func(s *builtins.Spec) (string, string) { return s.Name, s.Doc })
	b.WriteString("- [Control arguments](#control-arguments)\n\n")
	for _, s := range r.Builtins {
		fmt.Fprintf(b, "## %s\n\n", s.Name)
		codeBlock(b, "python", builtinSignature(s))
		fmt.Fprintf(b, "%s\n\n", s.Doc)
		if len(s.Params) > 0 || s.Control {
			b.WriteString("**Parameters**\n\n")
			for _, p := range s.Params {
				name, _ := strings.CutSuffix(p.Name, "?")
				item(b, name, p.Type, p.Default, p.Doc)
			}
			if s.Control {
				item(b, "**control", "", "", "the [control arguments](#control-arguments).")
			}
			b.WriteString("\n")
		}
		if s.Returns != "" {
			fmt.Fprintf(b, "**Returns**: %s\n\n", s.Returns)
		}
		fmt.Fprintf(b, "**Effects**: %s\n\n", s.Effects)
		example(b, s.Example)
	}
	b.WriteString("## Control arguments\n\n")
	var ops []string
	for _, s := range r.Builtins {
		if s.Control {
			ops = append(ops, "`"+s.Name+"`")
		}
	}
	b.WriteString("The builtins that act on a host (" + strings.Join(ops, ", ") + ") and every stdlib operation " +
		"accept these keywords. Their defaults come from the command line (`--sudo`, `--sudo-user`) and from " +
		"host data with the same name (`--data timeout=30`); a keyword on the call wins.\n\n")
	for _, p := range r.Control {
		item(b, p.Name, p.Type, p.Default, p.Doc)
	}
	b.WriteString("\n")
	example(b, `shell("systemctl restart app", name = "restart app", sudo = True, timeout = 60, retries = 2, retry_delay = 5)`)
	return b.String()
}

// builtinSignature renders the call of s: shell(cmd, creates=None, **control).
func builtinSignature(s *builtins.Spec) string {
	var parts []string
	for _, p := range s.Params {
		name, optional := strings.CutSuffix(p.Name, "?")
		if optional && p.Default != "" {
			name += "=" + p.Default
		}
		parts = append(parts, name)
	}
	if s.Control {
		parts = append(parts, "**control")
	}
	return s.Name + "(" + strings.Join(parts, ", ") + ")"
}

// --- facts

func (r *Reference) factsPage() string {
	b := newPage("Facts", "`fact(NAME, ARGS...)` reads a fact about the host (see [`fact`](builtins.md#fact)): "+
		"facts run also under `--dry`, never count as changes and are cached per host. "+
		"`star-deploy INVENTORY fact NAME [ARG...]` prints a fact of every host.")
	indexList(b, r.Facts, func(f builtins.FactDoc) (string, string) { return f.Name, f.Doc })
	b.WriteString("\n")
	for _, f := range r.Facts {
		fmt.Fprintf(b, "## %s\n\n", f.Name)
		codeBlock(b, "python", "fact("+strings.Join(append([]string{strconv.Quote(f.Name)}, f.Args...), ", ")+")")
		fmt.Fprintf(b, "%s\n\n", f.Doc)
		example(b, f.Example)
	}
	return b.String()
}

// --- stdlib

func (m *Module) page() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", m.Name)
	if m.Doc != "" {
		fmt.Fprintf(&b, "%s\n\n", m.Doc)
	}
	codeBlock(&b, "python", fmt.Sprintf("load(\"@stdlib//%s.star\", %q)", m.Name, m.Name))
	indexList(&b, m.Ops, func(op Op) (string, string) { return op.Name, op.Summary })
	b.WriteString("\n")
	for _, op := range m.Ops {
		fmt.Fprintf(&b, "## %s\n\n", op.Name)
		codeBlock(&b, "python", op.signature())
		for _, text := range []string{op.Summary, op.Body} {
			if text != "" {
				fmt.Fprintf(&b, "%s\n\n", text)
			}
		}
		if len(op.Params) > 0 {
			b.WriteString("**Parameters**\n\n")
			for _, p := range op.Params {
				switch {
				case p.Name == "*":
				case strings.HasPrefix(p.Name, "**") && p.Doc == "":
					item(&b, p.Name, "", "", "the [control arguments](../builtins.md#control-arguments).")
				default:
					item(&b, p.Name, "", p.Default, p.Doc)
				}
			}
			b.WriteString("\n")
		}
		if op.Returns != "" {
			fmt.Fprintf(&b, "**Returns**: %s\n\n", op.Returns)
		}
		example(&b, op.Example)
	}
	return b.String()
}

// signature renders the call of op: files.directory(path, mode=None, **control).
func (op Op) signature() string {
	var parts []string
	for _, p := range op.Params {
		if p.Default != "" {
			parts = append(parts, p.Name+"="+p.Default)
		} else {
			parts = append(parts, p.Name)
		}
	}
	return op.Name + "(" + strings.Join(parts, ", ") + ")"
}

// --- connectors

func (r *Reference) connectorsPage() string {
	b := newPage("Connectors", "The name of a host picks its connector (`@local`, `@ssh/HOST` or a bare `HOST`, `@docker/NAME`). "+
		"Data keys configure a connector; `--data KEY=VALUE` sets one for every host. "+
		"A connector key that the host's connector does not declare is an error before anything runs. "+
		"`star-deploy connectors` lists the same keys.")
	indexList(b, r.Connectors, func(f connectors.Factory) (string, string) { return "@" + f.Scheme(), f.Doc() })
	b.WriteString("\n")
	for _, f := range r.Connectors {
		fmt.Fprintf(b, "## @%s\n\n%s\n\n", f.Scheme(), f.Doc())
		codeBlock(b, "sh", "star-deploy "+hostExample(f)+" deploy.star")
		fields := f.Fields()
		if len(fields) == 0 {
			b.WriteString("Data keys: none.\n\n")
			continue
		}
		b.WriteString("**Data keys**\n\n")
		for _, fld := range fields {
			typ := fld.Type
			if fld.Secret {
				typ += ", secret"
			}
			v := exampleValue(fld)
			if v == "" {
				v = "VALUE"
			}
			item(b, fld.Name, typ, fld.Default, fmt.Sprintf("%s Example: `--data %s=%s`", fld.Doc, fld.Name, v))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// hostExample returns a host name of f's connector: "@local" when it
// takes no address, "@scheme/ADDR" when the factory has an ExampleAddr
// method, else "@scheme/web1".
func hostExample(f connectors.Factory) string {
	if _, err := f.Parse("", nil); err == nil {
		return "@" + f.Scheme()
	}
	if e, ok := f.(interface{ ExampleAddr() string }); ok {
		return "@" + f.Scheme() + "/" + e.ExampleAddr()
	}
	return "@" + f.Scheme() + "/web1"
}

var (
	egRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\be\.g\. ([^\s,;)]+)`) })
	urlRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\b[a-z]+://[^\s,;)]+`) })
	// valueByWord gives a plausible value to a key by a word of its name.
	valueByWord = map[string]string{"host": "10.0.0.5", "hostname": "10.0.0.5", "user": "deploy", "jump": "bastion", "key": "~/.ssh/id_ed25519"}
)

// exampleValue returns a plausible value of a data key, written as on a
// shell command line, from its type, default, Doc ("e.g. VALUE" or a URL)
// and name; "" when none follows.
func exampleValue(f connectors.Field) string {
	n, numErr := strconv.Atoi(f.Default)
	words := strings.Split(f.Name, "_")
	switch {
	case f.Secret: // from the environment, never written out
		return `"$` + strings.ToUpper(f.Name) + `"`
	case f.Type == "bool" && f.Default == "true":
		return "false"
	case f.Type == "bool":
		return "true"
	case f.Type == "int" && slices.Contains(words, "port"):
		return "2222"
	case f.Type == "int" && numErr == nil:
		return strconv.Itoa(n + 1)
	case f.Type == "duration" && numErr == nil && n > 0:
		return strconv.Itoa(2 * n)
	case f.Type == "duration":
		return "30"
	}
	if m := egRE().FindStringSubmatch(f.Doc); m != nil {
		return shellWord(strings.TrimSuffix(m[1], "."))
	}
	if u := urlRE().FindString(f.Doc); u != "" {
		return shellWord(u)
	}
	if f.Default != "" && !strings.ContainsAny(f.Default, " $") {
		return shellWord(f.Default)
	}
	for i := len(words) - 1; i >= 0; i-- {
		if v, ok := valueByWord[words[i]]; ok {
			return v
		}
	}
	return ""
}

// shellWord quotes s for a shell when it needs it.
func shellWord(s string) string {
	if strings.ContainsAny(s, " \t'\"\\|&;<>()*?[]#!`$") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// --- Markdown helpers

// newPage starts a page: its title and an introduction (a paragraph).
func newPage(title, intro string) *strings.Builder {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# %s\n\n%s\n\n", title, intro)
	return b
}

// indexList writes the list at the head of a page: an item for each of
// items, its name linked to its section, with the first sentence of its doc.
func indexList[T any](b *strings.Builder, items []T, nameDoc func(T) (name, doc string)) {
	for _, it := range items {
		name, doc := nameDoc(it)
		fmt.Fprintf(b, "- [`%s`](#%s): %s\n", name, anchor(name), firstSentence(doc))
	}
}

// item writes one list item: - `name` (type, default `d`): doc
func item(b *strings.Builder, name, typ, def, doc string) {
	var notes []string
	if typ != "" {
		notes = append(notes, typ)
	}
	if def != "" {
		notes = append(notes, "default "+value(def))
	}
	fmt.Fprintf(b, "- `%s`", name)
	if len(notes) > 0 {
		fmt.Fprintf(b, " (%s)", strings.Join(notes, ", "))
	}
	if doc != "" {
		fmt.Fprintf(b, ": %s", doc)
	}
	b.WriteString("\n")
}

// value renders a default: code, unless it is prose ("the local user").
func value(s string) string {
	if strings.Contains(s, "`") || strings.Contains(s, " ") && !strings.ContainsAny(s[:1], "\"'[{(") {
		return s
	}
	return "`" + s + "`"
}

func example(b *strings.Builder, text string) {
	if text == "" {
		return
	}
	b.WriteString("**Example**\n\n")
	codeBlock(b, "python", text)
}

func codeBlock(b *strings.Builder, lang, text string) {
	fmt.Fprintf(b, "```%s\n%s\n```\n\n", lang, strings.TrimRight(text, "\n"))
}

// anchor returns the GitHub anchor of a heading: "re.sub" -> "resub".
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// firstSentence returns the first sentence of a Markdown paragraph.
func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && !strings.HasSuffix(s[:i], "e.g") && !strings.HasSuffix(s[:i], "i.e") {
			return s[:i+1]
		}
	}
	return s
}

// --- stdlib modules

// Module is one stdlib module as its source documents it.
type Module struct {
	Name     string   // "files", of files.star
	Doc      string   // the module docstring: its introduction
	Ops      []Op     // the fields of the exported struct, in source order
	Problems []string // what the docstrings lack, each naming the module or operation
}

// Op is one operation of a stdlib module.
type Op struct {
	Name    string // "files.directory"
	Params  []OpParam
	Summary string // the docstring's first paragraph
	Body    string // its further paragraphs, Markdown
	Returns string
	Example string // Starlark
}

// OpParam is one parameter of an operation's def.
type OpParam struct {
	Name    string // as in the def: "path", "*args", "**control"; "*" alone starts keyword-only parameters
	Default string // source text of the default; "" when there is none
	Doc     string // from the Args section
}

// ParseModule reads the documentation of the stdlib module in src: its
// docstring, and the operations of its top-level `NAME = struct(op = _op,
// ...)`, NAME being the file's name without ".star". What the docs lack is
// listed in Problems; the error is for a file that does not parse.
func ParseModule(filename string, src []byte) (*Module, error) {
	f, err := runtime.FileOptions().Parse(filename, src, 0)
	if err != nil {
		return nil, err
	}
	m := &Module{Name: strings.TrimSuffix(path.Base(filename), ".star")}
	if len(f.Stmts) > 0 {
		if s, ok := docstring(f.Stmts[0]); ok {
			m.Doc = cleandoc(s)
		}
	}
	if m.Doc == "" {
		m.problem("%s: no module docstring", filename)
	}
	defs := map[string]*syntax.DefStmt{}
	var exported *syntax.CallExpr
	for _, stmt := range f.Stmts {
		switch s := stmt.(type) {
		case *syntax.DefStmt:
			defs[s.Name.Name] = s
		case *syntax.AssignStmt:
			call, ok := s.RHS.(*syntax.CallExpr)
			if s.Op == syntax.EQ && identName(s.LHS) == m.Name && ok && identName(call.Fn) == "struct" {
				exported = call
			}
		}
	}
	if exported == nil {
		m.problem("%s: no top-level `%s = struct(...)` exporting its operations", filename, m.Name)
		return m, nil
	}
	lines := strings.Split(string(src), "\n")
	for _, arg := range exported.Args {
		kw, ok := arg.(*syntax.BinaryExpr)
		if !ok || kw.Op != syntax.EQ {
			pos, _ := arg.Span()
			m.problem("%s: struct argument at line %d is not name = function", filename, pos.Line)
			continue
		}
		name := m.Name + "." + identName(kw.X)
		def := defs[identName(kw.Y)]
		if def == nil {
			m.problem("%s: not a function defined in %s", name, filename)
			m.Ops = append(m.Ops, Op{Name: name})
			continue
		}
		m.Ops = append(m.Ops, m.op(name, def, lines))
	}
	return m, nil
}

func (m *Module) problem(format string, args ...any) {
	m.Problems = append(m.Problems, fmt.Sprintf(format, args...))
}

// op documents the operation name, implemented by def.
func (m *Module) op(name string, def *syntax.DefStmt, lines []string) Op {
	op := Op{Name: name}
	for _, p := range def.Params {
		op.Params = append(op.Params, param(p, lines))
	}
	text, ok := docstring(def.Body[0])
	if !ok {
		m.problem("%s: no docstring", name)
		return op
	}
	d := parseDocstring(text)
	op.Summary, op.Body, op.Returns, op.Example = d.summary, d.body, d.returns, d.example
	if op.Summary == "" {
		m.problem("%s: no summary", name)
	}
	known := map[string]bool{}
	for i, p := range op.Params {
		bare := strings.TrimLeft(p.Name, "*")
		known[bare] = true
		op.Params[i].Doc = d.args[bare]
		if p.Name != "*" && !strings.HasPrefix(p.Name, "**") && d.args[bare] == "" {
			m.problem("%s: parameter %s is not described under Args", name, p.Name)
		}
	}
	for _, a := range d.argNames {
		if !known[a] {
			m.problem("%s: Args describes %s, which is not a parameter", name, a)
		}
	}
	if op.Example == "" {
		m.problem("%s: no Example", name)
	}
	return op
}

// param reads one parameter of a def: name, name = default, *, *args or
// **kwargs.
func param(e syntax.Expr, lines []string) OpParam {
	switch p := e.(type) {
	case *syntax.BinaryExpr:
		return OpParam{Name: identName(p.X), Default: source(lines, p.Y)}
	case *syntax.UnaryExpr:
		return OpParam{Name: p.Op.String() + identName(p.X)}
	}
	return OpParam{Name: identName(e)}
}

// identName returns the name of an identifier, or "" for anything else.
func identName(e syntax.Expr) string {
	if id, ok := e.(*syntax.Ident); ok {
		return id.Name
	}
	return ""
}

// source returns the source text of e, on one line.
func source(lines []string, e syntax.Expr) string {
	start, end := e.Span()
	var parts []string
	for l := start.Line; l <= end.Line && int(l) <= len(lines); l++ {
		r := []rune(lines[l-1])
		from, to := 0, len(r)
		if l == start.Line {
			from = min(int(start.Col)-1, len(r))
		}
		if l == end.Line {
			to = min(int(end.Col)-1, len(r))
		}
		parts = append(parts, strings.TrimSpace(string(r[from:max(from, to)])))
	}
	return strings.Join(parts, " ")
}

// docstring returns the string literal that stmt consists of.
func docstring(stmt syntax.Stmt) (string, bool) {
	es, ok := stmt.(*syntax.ExprStmt)
	if !ok {
		return "", false
	}
	lit, ok := es.X.(*syntax.Literal)
	if !ok || lit.Token != syntax.STRING {
		return "", false
	}
	return lit.Value.(string), true
}

// A doc is a parsed docstring.
type doc struct {
	summary, body, returns, example string
	args                            map[string]string // by parameter name, without * or **
	argNames                        []string          // in order
}

var (
	sectionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(Args|Returns|Example):\s*(.*)$`) })
	argRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$`) })
)

// parseDocstring splits a docstring into its summary (first paragraph),
// further paragraphs and the sections "Args:" (one "name: text" line per
// parameter, continued on lines indented deeper), "Returns:" and
// "Example:" (inline, or an indented block). A section starts at a line
// that is not indented and ends at the next one.
func parseDocstring(s string) doc {
	d := doc{args: map[string]string{}}
	var body, returns, example []string
	section, argIndent, arg := "", -1, ""
	for _, line := range strings.Split(cleandoc(s), "\n") {
		text := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		if text != "" && indent == 0 {
			m := sectionRE().FindStringSubmatch(text)
			if m == nil {
				section = ""
			} else {
				section = m[1]
				if m[2] != "" {
					returns, example = addInline(section, m[2], returns, example)
				}
				continue
			}
		}
		switch section {
		case "":
			body = append(body, line)
		case "Args":
			if text == "" {
				continue
			}
			if argIndent < 0 {
				argIndent = indent
			}
			if m := argRE().FindStringSubmatch(text); m != nil && indent <= argIndent {
				arg = m[1]
				d.argNames = append(d.argNames, arg)
				d.args[arg] = m[2]
			} else if arg != "" {
				d.args[arg] = strings.TrimSpace(d.args[arg] + " " + text)
			}
		case "Returns":
			if text != "" {
				returns = append(returns, text)
			}
		case "Example":
			example = append(example, line)
		}
	}
	d.summary, d.body = paragraphs(body)
	d.returns = strings.Join(returns, " ")
	d.example = strings.Join(trimBlank(dedent(example)), "\n")
	return d
}

// addInline adds the text after "Returns:" or "Example:" on the header line.
func addInline(section, text string, returns, example []string) ([]string, []string) {
	switch section {
	case "Returns":
		returns = append(returns, text)
	case "Example":
		example = append(example, text)
	}
	return returns, example
}

// paragraphs splits lines into the first paragraph, on one line, and the
// rest.
func paragraphs(lines []string) (first, rest string) {
	lines = trimBlank(lines)
	i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "" })
	if i < 0 {
		i = len(lines)
	}
	var words []string
	for _, l := range lines[:i] {
		words = append(words, strings.TrimSpace(l))
	}
	return strings.Join(words, " "), strings.Join(trimBlank(lines[i:]), "\n")
}

// cleandoc removes the indentation of a docstring, as Python's
// inspect.cleandoc: the first line is stripped, the others lose their
// common indentation, and blank lines at either end go.
func cleandoc(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	return strings.Join(trimBlank(append([]string{strings.TrimSpace(lines[0])}, dedent(lines[1:])...)), "\n")
}

// dedent removes the indentation common to the non-blank lines, and
// trailing spaces.
func dedent(lines []string) []string {
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if common < 0 || n < common {
			common = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		l = strings.TrimRight(l, " \t")
		if len(l) >= common && common > 0 {
			l = l[common:]
		}
		out[i] = l
	}
	return out
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
