package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/star-deploy/star-deploy/internal/gendocs"
	"github.com/star-deploy/star-deploy/inventory"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// Shell completion. `star-deploy completion SHELL` prints a script that,
// on every TAB, calls back into the binary as `star-deploy __complete --
// WORD...` with the words of the line up to the cursor, the last being the
// word to complete (empty after a space). The binary answers with the
// candidates computed from what it knows: the kong grammar (commands,
// flags, enums), the facts and the stdlib operations (internal/gendocs),
// and the inventory named earlier on the line (its groups and hosts). The
// scripts only relay, so they stay the same when the grammar grows.
//
// The answer is one line of directives, space-separated words the script
// acts on, then one line per candidate, "WORD" or "WORD\tDESCRIPTION" (zsh
// and fish show the description; bash drops it). The directives:
//
//	files    also complete file names, as the shell does
//	star     also complete directories and *.star files
//	nospace  add no space after the candidate (every candidate ends in
//	         =, /, , or : and no file names are offered)
//
// Candidates are the complete words that start with the word being
// completed: a script strips what its shell does not count as part of the
// word (bash splits --limit=web at the =).

// completeCommand is the hidden command the completion scripts call.
const completeCommand = "__complete"

// completionCmd prints the completion script of a shell.
type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"The shell: bash, zsh or fish."`
}

// Help is the detail of `star-deploy completion --help`: how to enable
// the script.
func (*completionCmd) Help() string {
	return `TAB then completes commands, flags, hosts, scripts, MODULE.OP operations, fact
names, --data keys, and the groups and hosts of the inventory on the line after
--limit and --exclude.

  bash: source <(star-deploy completion bash)
        or, for every shell, in ~/.bashrc: eval "$(star-deploy completion bash)"
  zsh:  source <(star-deploy completion zsh)   (after compinit)
        or, for every shell: star-deploy completion zsh > "${fpath[1]}/_star-deploy"
  fish: star-deploy completion fish | source
        or, for every shell: star-deploy completion fish > ~/.config/fish/completions/star-deploy.fish`
}

// run writes the script of c.Shell to w.
func (c *completionCmd) run(w io.Writer) error {
	script, ok := completionScripts[c.Shell]
	if !ok {
		return fmt.Errorf("completion: no script for the shell %q; want bash, zsh or fish", c.Shell)
	}
	_, err := io.WriteString(w, script)
	return err
}

// candidate is one completion of the current word.
type candidate struct {
	word, desc string
}

// completion is the answer to one completion request.
type completion struct {
	items []candidate
	files bool // the shell should also complete file names
	star  bool // ... or directories and *.star files
}

// write writes c in the protocol the scripts read: directives, then the
// candidates that start with cur, without duplicates.
func (c *completion) write(w io.Writer, cur string) {
	var dirs []string
	if c.files {
		dirs = append(dirs, "files")
	}
	if c.star {
		dirs = append(dirs, "star")
	}
	var items []candidate
	seen := map[string]bool{}
	for _, it := range c.items {
		if it.word == "" || !strings.HasPrefix(it.word, cur) || seen[it.word] || strings.ContainsAny(it.word, "\n\t") {
			continue
		}
		seen[it.word] = true
		items = append(items, it)
	}
	// A word that goes on (KEY=, @ssh/, a,) takes no space after it,
	// unless file names are offered too.
	if !c.files && !c.star && len(items) > 0 && !slices.ContainsFunc(items, func(it candidate) bool {
		return !strings.ContainsAny(it.word[len(it.word)-1:], "=/,:")
	}) {
		dirs = append(dirs, "nospace")
	}
	fmt.Fprintln(w, strings.Join(dirs, " "))
	for _, it := range items {
		if it.desc == "" {
			fmt.Fprintln(w, it.word)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\n", it.word, summary(it.desc))
	}
}

// summary shortens a help text to its first sentence, on one line, at
// most 80 characters.
func summary(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}

// complete answers a completion request: words are the arguments after
// the program name up to the cursor (after an optional "--"), the last
// being the word to complete. It never fails: what it cannot work out
// (an inventory that does not load) yields fewer candidates.
func complete(w io.Writer, words []string) {
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	if len(words) == 0 {
		words = []string{""}
	}
	parser, err := kong.New(&cli{}, kong.Name("star-deploy"))
	if err != nil {
		panic("internal error: " + err.Error())
	}
	cur := words[len(words)-1]
	c := (&completer{root: parser.Model.Node}).complete(words[:len(words)-1], cur)
	c.write(w, cur)
}

// completer works out the candidates from the kong grammar and the
// reference.
type completer struct {
	root *kong.Node
	ref  *gendocs.Reference // loaded on first use
}

// reference returns the reference of builtins, facts and stdlib, or nil
// when it does not load.
func (c *completer) reference() *gendocs.Reference {
	if c.ref == nil {
		ref, err := gendocs.Load()
		if err != nil {
			return &gendocs.Reference{}
		}
		c.ref = ref
	}
	return c.ref
}

// line is what the words before the cursor say.
type line struct {
	node    *kong.Node // the command: root until a command word is seen
	args    []string   // its positional arguments
	dashes  bool       // "--" was seen: the rest are arguments
	pending *kong.Flag // a flag whose value is the current word
}

// parseLine walks the words before the cursor as kong would: flags
// (skipping the values of those that take one), the command, and the
// positional arguments of the command.
func (c *completer) parseLine(words []string) line {
	l := line{node: c.root}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case l.dashes:
			l.args = append(l.args, w)
		case w == "--":
			l.dashes = true
		case strings.HasPrefix(w, "--"):
			name, _, hasValue := strings.Cut(w[2:], "=")
			if f := c.flag(l.node, name, 0); f != nil && takesValue(f) && !hasValue {
				if i+1 == len(words) {
					l.pending = f
				}
				i++
			}
		case strings.HasPrefix(w, "-") && len(w) > 1:
			// Short flags, clustered (-vq); one that takes a value takes
			// the rest of the word, or the next word.
			for j, r := range w[1:] {
				if f := c.flag(l.node, "", r); f != nil && takesValue(f) {
					if j+2 == len(w) {
						if i+1 == len(words) {
							l.pending = f
						}
						i++
					}
					break
				}
			}
		case l.node == c.root && len(l.args) == 0 && c.command(w) != nil:
			l.node = c.command(w)
		default:
			l.args = append(l.args, w)
		}
	}
	return l
}

// command returns the visible command named name, or nil.
func (c *completer) command(name string) *kong.Node {
	for _, n := range c.root.Children {
		if n.Type == kong.CommandNode && (n.Name == name || slices.Contains(n.Aliases, name)) {
			return n
		}
	}
	return nil
}

// runNode returns the command that runs when none is named.
func (c *completer) runNode() *kong.Node {
	if c.root.DefaultCmd != nil {
		return c.root.DefaultCmd
	}
	return c.command("run")
}

// flags returns the flags that apply on node: its own and its parents',
// and those of the default command while no command is named.
func (c *completer) flags(node *kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for _, group := range node.AllFlags(true) {
		out = append(out, group...)
	}
	if node == c.root {
		if run := c.runNode(); run != nil {
			out = append(out, run.Flags...)
		}
	}
	return slices.DeleteFunc(out, func(f *kong.Flag) bool { return f.Hidden })
}

// flag returns the flag of node named name (or with the short name r).
func (c *completer) flag(node *kong.Node, name string, r rune) *kong.Flag {
	for _, f := range c.flags(node) {
		if name != "" && (f.Name == name || slices.Contains(f.Aliases, name)) || r != 0 && f.Short == r {
			return f
		}
	}
	return nil
}

// takesValue reports whether f is followed by a value.
func takesValue(f *kong.Flag) bool {
	return !f.IsBool() && !f.IsCounter()
}

// complete returns the candidates for cur after the words before it.
func (c *completer) complete(before []string, cur string) *completion {
	l := c.parseLine(before)
	switch {
	case l.pending != nil:
		return c.flagValue(l, l.pending, "", cur)
	case !l.dashes && strings.HasPrefix(cur, "--") && strings.Contains(cur, "="):
		name, value, _ := strings.Cut(cur[2:], "=")
		if f := c.flag(l.node, name, 0); f != nil && takesValue(f) {
			return c.flagValue(l, f, "--"+name+"=", value)
		}
		return &completion{}
	case !l.dashes && strings.HasPrefix(cur, "-"):
		return c.flagNames(l.node, cur)
	}
	return c.positional(l, cur)
}

// flagNames lists the flags of node: the long names, and the short ones
// when cur is a lone "-".
func (c *completer) flagNames(node *kong.Node, cur string) *completion {
	out := &completion{}
	for _, f := range c.flags(node) {
		word := "--" + f.Name
		if takesValue(f) && strings.Contains(cur, "=") {
			word += "="
		}
		out.items = append(out.items, candidate{word, f.Help})
		if f.Short != 0 && cur == "-" {
			out.items = append(out.items, candidate{"-" + string(f.Short), f.Help})
		}
	}
	return out
}

// flagValue completes the value of flag f. prefix is what comes before the
// value in the word ("--limit="), value the value so far.
func (c *completer) flagValue(l line, f *kong.Flag, prefix, value string) *completion {
	out := &completion{}
	add := func(word, desc string) { out.items = append(out.items, candidate{prefix + word, desc}) }
	switch {
	case f.Enum != "":
		for _, e := range f.EnumSlice() {
			add(e, "")
		}
	case f.Name == "limit" || f.Name == "exclude":
		// A comma-separated list: complete its last item.
		done := value[:strings.LastIndex(value, ",")+1]
		inv := c.inventory(l)
		if inv == nil {
			return out
		}
		for _, g := range inv.Groups {
			add(done+g.Name, fmt.Sprintf("group of %d hosts", len(g.Hosts)))
		}
		for _, h := range inv.Hosts {
			add(done+h.Name, "host")
		}
	case f.Name == "data":
		if strings.Contains(value, "=") {
			return out
		}
		ref := c.reference()
		for _, fac := range ref.Connectors {
			for _, fld := range fac.Fields() {
				add(fld.Name+"=", fld.Doc)
			}
		}
		for _, p := range ref.Control {
			if name := strings.TrimSuffix(p.Name, "?"); sdrt.IsControlKey(name) {
				add(name+"=", p.Doc)
			}
		}
	case f.Tag.Type == "path" || f.Tag.Type == "existingfile" || f.PlaceHolder == "FILE" || f.PlaceHolder == "DIR":
		out.files = prefix == ""
	}
	return out
}

// positional completes an argument of the command l names.
func (c *completer) positional(l line, cur string) *completion {
	out := &completion{}
	node := l.node
	if node == c.root {
		if len(l.args) == 0 {
			for _, n := range c.root.Children {
				if n.Type == kong.CommandNode && !n.Hidden {
					out.items = append(out.items, candidate{n.Name, n.Help})
				}
			}
		}
		node = c.runNode()
	}
	if node == c.runNode() {
		c.runArg(out, l.args, cur)
		return out
	}
	if i := len(l.args); i < len(node.Positional) {
		p := node.Positional[i]
		switch {
		case p.Enum != "":
			for _, e := range p.EnumSlice() {
				out.items = append(out.items, candidate{e, ""})
			}
		case node.Name == "docs":
			for _, t := range c.reference().Topics() {
				out.items = append(out.items, candidate{t, ""})
			}
		}
	}
	return out
}

// runWordHelp describes the words that may follow INVENTORY.
var runWordHelp = map[string]string{
	"exec":      "run one shell command on every host: exec -- CMD...",
	"fact":      "print a fact of every host: fact NAME [ARG...]",
	"inventory": "print the hosts, groups and data, without connecting",
}

// runArg completes argument len(args) of a run: INVENTORY, then a script,
// MODULE.OP or a run word, then what that takes.
func (c *completer) runArg(out *completion, args []string, cur string) {
	switch {
	case len(args) == 0:
		c.hosts(out, cur)
		return
	case len(args) == 1:
		if path, _, ok := strings.Cut(cur, ".star:"); ok {
			c.functions(out, path+".star")
			return
		}
		for _, w := range runWords {
			out.items = append(out.items, candidate{w, runWordHelp[w]})
		}
		for _, m := range c.reference().Modules {
			if m.Name == "ops" {
				continue // helpers for writing operations, not operations
			}
			for _, op := range m.Ops {
				out.items = append(out.items, candidate{op.Name, op.Summary})
			}
		}
		out.star = true
		return
	}
	switch what := args[1]; {
	case what == "fact":
		if len(args) == 2 {
			for _, f := range c.reference().Facts {
				out.items = append(out.items, candidate{f.Name, f.Doc})
			}
		}
	case what == "exec":
		out.files = true
	case what == "inventory":
	case opTarget().MatchString(what) && !strings.HasSuffix(what, ".star"):
		c.keywords(out, what, cur)
	default:
		out.star = true
	}
}

// hosts completes INVENTORY: a connector prefix (@local, @ssh/, ...),
// after a comma too, or a file.
func (c *completer) hosts(out *completion, cur string) {
	done := cur[:strings.LastIndex(cur, ",")+1]
	for _, f := range c.reference().Connectors {
		if s := f.Scheme(); s == "local" {
			out.items = append(out.items, candidate{done + "@local", "this machine"})
		} else {
			out.items = append(out.items, candidate{done + "@" + s + "/", f.Doc()})
		}
	}
	out.files = done == ""
}

// functions completes SCRIPT.star:FUNC with the functions script defines.
func (c *completer) functions(out *completion, script string) {
	src, err := os.ReadFile(script)
	if err != nil {
		return
	}
	f, err := sdrt.FileOptions().Parse(script, src, 0)
	if err != nil {
		return
	}
	for _, name := range defNames(f) {
		if !strings.HasPrefix(name, "_") {
			out.items = append(out.items, candidate{script + ":" + name, "function of " + script})
		}
	}
}

// keywords completes an argument of the ad-hoc operation target: its
// keyword parameters and the control arguments as KEY=, or a file.
func (c *completer) keywords(out *completion, target, cur string) {
	if strings.Contains(cur, "=") {
		return
	}
	ref := c.reference()
	for _, m := range ref.Modules {
		for _, op := range m.Ops {
			if op.Name != target {
				continue
			}
			control := false
			for _, p := range op.Params {
				switch {
				case strings.HasPrefix(p.Name, "**"):
					control = true
				case !strings.HasPrefix(p.Name, "*"):
					out.items = append(out.items, candidate{p.Name + "=", p.Doc})
				}
			}
			if control {
				for _, p := range ref.Control {
					name := strings.TrimSuffix(p.Name, "?")
					out.items = append(out.items, candidate{name + "=", p.Doc})
				}
			}
		}
	}
	out.files = true
}

// inventoryTimeout bounds loading the inventory of a completion: an
// inventory.star that loops must not hang the shell.
const inventoryTimeout = 3 * time.Second

// inventory loads the INVENTORY of l, or returns nil when there is none,
// it does not load or loading takes too long.
func (c *completer) inventory(l line) *inventory.Inventory {
	if l.node != c.root && l.node != c.runNode() || len(l.args) == 0 {
		return nil
	}
	if inventory.IsScript(l.args[0]) {
		return nil // a TAB does not run a dynamic inventory script
	}
	done := make(chan *inventory.Inventory, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), inventoryTimeout)
		defer cancel()
		inv, err := inventory.Load(ctx, l.args[0])
		if err != nil {
			inv = nil
		}
		done <- inv
	}()
	select {
	case inv := <-done:
		return inv
	case <-time.After(inventoryTimeout):
		return nil
	}
}

// completionScripts are the scripts completion prints, by shell. Each
// relays the words before the cursor to the binary the line runs
// (star-deploy __complete -- WORD...) and offers its candidates; see the
// protocol at the top of this file.
var completionScripts = map[string]string{"bash": bashScript, "zsh": zshScript, "fish": fishScript}

const bashScript = `# bash completion for star-deploy.
# For the current shell:          source <(star-deploy completion bash)
# For every shell, in ~/.bashrc:  eval "$(star-deploy completion bash)"
# The candidates come from the binary: star-deploy __complete -- WORD...

_star_deploy() {
	local line=${COMP_LINE:0:COMP_POINT} rest w last= cmd prefix directive c i
	local -a words=() out=() files=()
	if [[ -z ${COMP_LINE+set} ]]; then
		words=("${COMP_WORDS[@]:0:COMP_CWORD+1}")
		last=${COMP_WORDS[COMP_CWORD]}
	else
		# bash splits words at = and : (COMP_WORDBREAKS); a word that follows
		# the previous one without a space belongs to it (--limit=web).
		for ((i = 0; i <= COMP_CWORD; i++)); do
			w=${COMP_WORDS[i]}
			rest=${line#"${line%%[![:space:]]*}"}
			if ((i == COMP_CWORD)); then
				w=$rest # the word being completed, up to the cursor
				last=$w
			fi
			if ((i > 0)) && [[ $rest == "$line" ]]; then
				words[${#words[@]}-1]+=$w
			else
				words+=("$w")
			fi
			line=${rest#"$w"}
		done
	fi
	prefix=${words[${#words[@]}-1]}
	prefix=${prefix%"$last"} # what bash does not count as the current word
	cmd=${words[0]}
	[[ $cmd == "~/"* ]] && cmd=$HOME/${cmd#"~/"}
	while IFS= read -r c; do out+=("$c"); done < <("$cmd" __complete -- "${words[@]:1}" 2>/dev/null)
	COMPREPLY=()
	((${#out[@]})) || return 0
	directive=" ${out[0]} "
	for c in "${out[@]:1}"; do
		c=${c%%$'\t'*}
		COMPREPLY+=("${c#"$prefix"}")
	done
	if [[ $directive == *" files "* ]]; then
		while IFS= read -r c; do files+=("$c"); done < <(compgen -f -- "$last")
	elif [[ $directive == *" star "* ]]; then
		while IFS= read -r c; do files+=("$c"); done < <(compgen -d -- "$last"; compgen -f -X '!*.star' -- "$last")
	fi
	for c in "${files[@]}"; do
		if [[ -d $c ]]; then
			c+=/
		fi
		printf -v c %q "$c"
		COMPREPLY+=("$c")
	done
	# A word that goes on (KEY=, @ssh/, dir/) takes no space after it.
	if [[ $directive == *" nospace "* ]] || { ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *[=/,:] ]]; }; then
		compopt -o nospace 2>/dev/null
	fi
	return 0
}
complete -F _star_deploy star-deploy
`

const zshScript = `#compdef star-deploy
# zsh completion for star-deploy.
# For the current shell (after compinit):  source <(star-deploy completion zsh)
# For every shell: star-deploy completion zsh > "${fpath[1]}/_star-deploy"
# The candidates come from the binary: star-deploy __complete -- WORD...

_star_deploy() {
	local -a out cands glued
	local line directive w d ret=1
	out=("${(@f)$(${(Q)words[1]} __complete -- "${(@Q)words[2,CURRENT]}" 2>/dev/null)}")
	(( $#out )) || return 1
	directive=" ${out[1]} "
	for line in "${(@)out[2,-1]}"; do
		[[ -n $line ]] || continue
		w=${line%%$'\t'*}
		d=
		[[ $line == *$'\t'* ]] && d=${line#*$'\t'}
		# A word that goes on (KEY=, @ssh/) takes no space after it.
		if [[ $w == *[=/,:] ]]; then
			glued+=("${w//:/\\:}${d:+:$d}")
		else
			cands+=("${w//:/\\:}${d:+:$d}")
		fi
	done
	if (( $#cands + $#glued )); then
		_describe -t values 'star-deploy' cands -- glued -S '' && ret=0
	fi
	if [[ $directive == *" files "* ]]; then
		_files && ret=0
	elif [[ $directive == *" star "* ]]; then
		_files -g '*.star' && ret=0
	fi
	return ret
}

if [[ $funcstack[1] == _star-deploy ]]; then
	_star_deploy "$@"
else
	compdef _star_deploy star-deploy
fi
`

const fishScript = `# fish completion for star-deploy.
# For the current shell:  star-deploy completion fish | source
# For every shell:        star-deploy completion fish > ~/.config/fish/completions/star-deploy.fish
# The candidates come from the binary: star-deploy __complete -- WORD...

function __star_deploy_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($tokens[1] __complete -- $tokens[2..-1] $cur 2>/dev/null)
    or return
    set -l directive (string split ' ' -- $out[1])
    for line in $out[2..-1]
        printf '%s\n' $line
    end
    if contains -- files $directive
        __fish_complete_path $cur
    else if contains -- star $directive
        __fish_complete_suffix .star
    end
end

complete -c star-deploy -f -a '(__star_deploy_complete)'
`
