package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// The run flags sit at the root of the grammar, so that they may come
// before the inventory, after it, or after the scripts. --help shows each
// command only the ones that apply to it: none to docs and connectors, and
// a few fewer to exec and fact, which are words after INVENTORY that kong
// itself does not know.

// runHelp is the help of a word that follows INVENTORY.
type runHelp struct {
	usage  string   // after "Usage: star-deploy "
	help   string   // what it does
	detail string   // more, with examples
	hide   []string // run flags that do not apply
}

var runHelps = map[string]runHelp{
	"exec": {
		usage: "[flags] INVENTORY exec -- CMD [ARG...]",
		help:  "Run one shell command on every host and print its output, each line prefixed with [host]: stdout on stdout, stderr on stderr.",
		detail: `Several words after -- are quoted one by one and make one command; a
single word is a shell command line, with pipes and variables. Everything
after -- belongs to the command, flags included. A command that exits
non-zero fails its host (exit code 1); --dry prints what would run. The
control flags (--sudo, --sudo-user, --data env=..., chdir=..., timeout=...)
apply as they do to shell() in a script.

Examples:

    star-deploy @local exec -- uname -a
    star-deploy web,db exec -- 'df -h / | tail -1'
    star-deploy inventory.star exec --limit web --sudo -- systemctl restart nginx
    star-deploy @docker/app exec -- printf '%s\n' 'a b'`,
		hide: []string{"diff", "max-steps"},
	},
	"fact": {
		usage: "[flags] INVENTORY fact NAME [ARG...]",
		help:  "Print one fact of every host, as fact(NAME, ARG...) returns it in a script; it changes nothing.",
		detail: `Facts are read-only, so fact runs the same with or without --dry and never
asks (--confirm). With --json each host's value is a JSON value in a fact
event. star-deploy docs facts lists the facts and their arguments.

Examples:

    star-deploy @local fact os
    star-deploy web fact file /etc/nginx/nginx.conf
    star-deploy inventory.star fact packages --limit db --json
    star-deploy @ssh/db1 fact systemd_unit postgresql --sudo`,
		hide: []string{"dry", "diff", "max-steps", "confirm", "yes", "fail-percent", "serial"},
	},
}

// printHelp is the --help of star-deploy: kong's, with the flags that do
// not apply hidden, a help of their own for exec and fact, and the exit
// codes after the help of a run.
func printHelp(options kong.HelpOptions, ctx *kong.Context) error {
	ctx.Model.Help = description
	sel := ctx.Selected()
	runFlags := rootRunFlags(ctx.Model)
	hide := func(names func(*kong.Flag) bool) {
		for _, f := range runFlags {
			if names(f) {
				f.Hidden = true
			}
		}
	}
	exitCodes := true
	switch {
	case sel != nil && (sel.Name == "pull" || sel.Name == "bundle"):
		// The run flags these commands take.
		hide(func(f *kong.Flag) bool { return !slices.Contains(connectFlags[sel.Name], f.Name) })
		exitCodes = sel.Name == "pull"
		sel.Detail = map[string]string{"pull": pullDetail, "bundle": bundleDetail}[sel.Name]
	case sel != nil && (sel.Name == "mod" || sel.Parent != nil && sel.Parent.Name == "mod"):
		hide(func(f *kong.Flag) bool { return !slices.Contains(connectFlags["mod"], f.Name) })
		exitCodes = false
		sel.Detail = modDetail
	case sel != nil && sel.Name != "run":
		// docs, connectors: none of the run flags.
		hide(func(*kong.Flag) bool { return true })
		exitCodes = false
	case sel != nil:
		word := runWord(ctx)
		h, ok := runHelps[word]
		if !ok {
			break
		}
		hide(func(f *kong.Flag) bool { return slices.Contains(h.hide, f.Name) })
		// The run command's help and arguments become those of the word.
		sel.Help, sel.Detail, sel.Positional = h.help, h.detail, nil
		options.NoAppSummary = true
		fmt.Fprintf(ctx.Stdout, "Usage: star-deploy %s\n", h.usage)
	}
	if err := kong.DefaultHelpPrinter(options, ctx); err != nil {
		return err
	}
	if !exitCodes {
		return nil
	}
	_, err := fmt.Fprintf(ctx.Stdout, "\n%s\n", exitCodesHelp)
	return err
}

// rootRunFlags returns the flags of a run: those at the root of the
// grammar but --help, --version and --config.
func rootRunFlags(app *kong.Application) []*kong.Flag {
	var out []*kong.Flag
	for _, f := range app.Flags {
		// --connector-plugin applies everywhere: runs, connectors, connector test.
		if !slices.Contains(notSettable, f.Name) && f.Name != "connector-plugin" {
			out = append(out, f)
		}
	}
	return out
}

// runWord returns the word (exec, fact) that the run command's arguments
// name, as kong has traced them so far: the first argument after
// INVENTORY, or INVENTORY itself (`star-deploy exec --help`).
func runWord(ctx *kong.Context) string {
	var inv string
	var args []string
	for _, p := range ctx.Path {
		if p.Positional == nil {
			continue
		}
		v := ctx.Value(p)
		switch p.Positional.Name {
		case "inventory":
			if v.IsValid() && v.Kind() == reflect.String {
				inv = v.String()
			}
		case "script":
			if v.IsValid() && v.Kind() == reflect.Slice {
				for i := range v.Len() {
					args = append(args, v.Index(i).String())
				}
			}
		}
	}
	if len(args) > 0 {
		return args[0]
	}
	return inv
}

// checkFlagsApply refuses run flags given on the command line to a command
// they do not apply to (star-deploy docs --dry). The config file and the
// STAR_DEPLOY_* environment may set them all the same: they are defaults
// for every command.
// connectFlags are the run flags that commands other than run take: how
// `connector test` reaches its host.
var connectFlags = map[string][]string{
	"connector": {"data", "user", "port", "key", "password", "jump", "sudo", "sudo-user", "sudo-password", "verbose"},
	// pull runs a bundle on @local as a run does.
	"pull": {"dry", "diff", "json", "data", "sudo", "sudo-user", "sudo-password", "verbose", "quiet", "max-steps", "fail-percent"},
	// bundle's --exclude leaves files out.
	"bundle": {"exclude", "frozen", "lock-file", "module-cache"},
	// mod finds the lock file and the cache as a run does.
	"mod": {"frozen", "lock-file", "module-cache"},
}

func checkFlagsApply(kctx *kong.Context) error {
	cmd := strings.Fields(kctx.Command())
	if len(cmd) == 0 || cmd[0] == "run" {
		return nil
	}
	run := rootRunFlags(kctx.Model)
	for _, p := range kctx.Path {
		if p.Flag != nil && slices.Contains(run, p.Flag) && !slices.Contains(connectFlags[cmd[0]], p.Flag.Name) {
			return usagef("--%s does not apply to %s (see star-deploy %s --help)", p.Flag.Name, cmd[0], cmd[0])
		}
	}
	return nil
}
