package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/all"
	"github.com/star-deploy/star-deploy/internal/spell"
	"github.com/star-deploy/star-deploy/inventory"
	"github.com/star-deploy/star-deploy/modules"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

const description = `Run Starlark deploy scripts on many hosts at once.

  star-deploy [flags] INVENTORY SCRIPT.star...      run the scripts, in order, on every host
  star-deploy [flags] INVENTORY SCRIPT.star:FUNC    run the script's top level, then FUNC()
  star-deploy [flags] INVENTORY MODULE.OP [ARG...] [KEY=VALUE...]
                                                    run one stdlib operation on every host
  star-deploy [flags] INVENTORY exec -- CMD...      run one shell command on every host
  star-deploy [flags] INVENTORY fact NAME [ARG...]  print a fact of every host
  star-deploy [flags] INVENTORY inventory           print the hosts, groups and data, without connecting
  star-deploy [flags] INVENTORY repl                run Starlark lines live on every host (see below)
  star-deploy connectors                            list the connectors and their data keys
  star-deploy connector test @NAME/ADDR             run the conformance suite against a connector
  star-deploy docs [TOPIC]                          print the reference (builtins, facts, stdlib, connectors)
  star-deploy completion bash|zsh|fish              print the shell completion script
  star-deploy bundle SCRIPT.star... -o FILE         pack scripts, modules and files into one signed file
  star-deploy pull SOURCE                           fetch a bundle, verify it and run it on this machine
  star-deploy mod lock|update|verify|vendor         manage remote modules and star-deploy.lock

star-deploy exec --help and star-deploy fact --help describe exec and fact.

INVENTORY is a host or a comma-separated list of hosts: @local, @ssh/HOST (or a
bare HOST), @docker/NAME, @podman/NAME, @dockerssh/HOST:CONTAINER (or IMAGE), @chroot/DIR,
@NAME/ADDR of a connector plugin (the executable star-deploy-connector-NAME on
PATH); names that stand for many hosts: @docker/label=K=V (or another docker ps
filter), @docker/* (every running container), @terraform/OUTPUT (the hosts of a
Terraform output); or an inventory.star file (groups and host data); or an
Ansible inventory (INI or YAML), or an Ansible dynamic inventory script (an
executable, run with --list).

An ad-hoc operation's ARG and VALUE are Starlark literals when they parse as
one (True, 8080, ["a","b"], "quoted"), else strings:
  star-deploy @local files.line /tmp/hosts "127.0.0.1 x" present=False

repl connects every host once and runs each line (or block, ended by a
blank line) on all of them, each host keeping its own globals; a value is
printed per host, errors too, and the REPL goes on. The stdlib modules need
no load(). On a terminal: history (Up), Tab completion, Ctrl-C drops the
line; from a pipe, plain lines:
  printf 'fact("arch")\n' | star-deploy @local repl
Ctrl-C stops the running line on every host, Ctrl-D or the end of input
exits (1 if a line failed anywhere).`

// cli is the kong grammar. Deploying is the default command, so
// `star-deploy @local deploy.star` and `star-deploy run @local deploy.star`
// are the same. The flags sit at the top so that --help lists them and they
// may come before or after the arguments.
type cli struct {
	topFlags `embed:""`
	flags    `embed:""`

	Run        runCmd        `cmd:"" default:"withargs" help:"Run scripts (the default command), exec a command or print a fact on every host."`
	Connectors connectorsCmd `cmd:"" help:"List the connectors and their data keys, plugins on PATH included."`
	Connector  connectorCmd  `cmd:"" help:"Test a connector: connector test @NAME/ADDR runs the conformance suite against it."`
	Docs       docsCmd       `cmd:"" help:"Print the reference generated from the code (builtins, facts, stdlib, connectors), or write it with --dir."`
	Completion completionCmd `cmd:"" help:"Print the shell completion script of bash, zsh or fish (source <(star-deploy completion bash))."`
	Bundle     bundleCmd     `cmd:"" help:"Pack deploy scripts, the modules they load and the files they read into one file, optionally signed with an SSH key."`
	Pull       pullCmd       `cmd:"" help:"Fetch a bundle (a file, an http(s) URL or a git repository), verify its signature and run it on this machine (@local)."`
	RunBundle  runBundleCmd  `cmd:"" name:"__run-bundle" hidden:"" help:"Internal: run a bundle an --on-host run uploaded (onhost.go)."`
	Mod        modCmd        `cmd:"" help:"Manage the remote modules of a deploy (load(\"git+https://...@REF//x.star\")) and star-deploy.lock: mod lock, mod update, mod verify, mod vendor."`
}

// runGrammar is cli with run as its only command, which kong builds in
// half the time (1.0 ms against 2.0 here): parse tries it first when no
// argument names another command. Its fields are cli's, with the same tags
// (TestRunGrammarIsCli).
type runGrammar struct {
	topFlags `embed:""`
	flags    `embed:""`

	Run runCmd `cmd:"" default:"withargs" help:"Run scripts (the default command), exec a command or print a fact on every host."`
}

// versionFlag is --version. Unlike kong.VersionFlag it needs no kong
// variable: kong interpolates every variable into every flag's help
// (0.2 ms of each start), and reading the build info for it costs more.
type versionFlag bool

// BeforeReset prints the version and exits, as kong.VersionFlag does.
func (versionFlag) BeforeReset(app *kong.Kong) error {
	fmt.Fprintln(app.Stdout, versionString())
	app.Exit(0)
	return nil
}

// topFlags are the flags of every command that are not a run's.
type topFlags struct {
	Version versionFlag `help:"Print the version and commit and exit."`
	Config  string      `placeholder:"FILE" help:"Read flag defaults from FILE (default: star-deploy.star in the current directory, if there is one)."`
	// ConnectorPlugin adds plugins to those found on PATH (connector.go).
	ConnectorPlugin []string `name:"connector-plugin" sep:"none" placeholder:"PATH" type:"path" help:"Use the connector plugin executable PATH (repeatable): a file named star-deploy-connector-NAME provides @NAME. Plugins named so on PATH are found without this flag."`
}

// flags are the options of a deploy, exec or fact run.
type flags struct {
	Dry      bool     `negatable:"" help:"Change nothing: report what each operation would do."`
	Diff     bool     `negatable:"" help:"Show unified diffs of file contents."`
	JSON     bool     `negatable:"" name:"json" help:"Write one JSON event per line to stdout and nothing else; errors and the summary go to stderr."`
	Parallel int      `default:"20" placeholder:"N" help:"Run at most N hosts at once (0: all)."`
	Data     []string `sep:"none" placeholder:"KEY=VALUE" help:"Set host data on every host (repeatable; values are strings). Connector keys (e.g. ssh_port=2222) configure the connector; control keys (sudo=true, sudo_user=app, timeout=30, ...) set the default of that control argument, like --sudo."`
	Sudo     bool     `negatable:"" help:"Run every operation with sudo (the default of sudo=)."`
	SudoUser string   `placeholder:"USER" help:"Become USER with sudo (the default of sudo_user=; implies --sudo)."`
	Verbose  int      `short:"v" type:"counter" help:"More detail, repeatable: -v shell output, why an operation changed nothing and the Starlark backtrace of failures; -vv also every command sent to a host (secrets redacted); -vvv also each line of output as a host prints it."`
	Quiet    bool     `negatable:"" short:"q" help:"Show only failures, print() output and the summary."`
	MaxSteps uint64   `placeholder:"N" help:"Stop a host's script after N Starlark steps (0: no limit)."`

	FailPercent  *int   `placeholder:"N" help:"Stop starting operations once more than N% of hosts have failed (0: at the first failure)."`
	SudoPassword bool   `help:"Ask once for the sudo password of every host (the default of the secret sudo_password data)."`
	User         string `placeholder:"USER" help:"SSH user (ssh_user)."`
	Port         int    `placeholder:"PORT" help:"SSH port (ssh_port)."`
	Key          string `placeholder:"FILE" type:"path" help:"SSH private key file (ssh_key)."`
	Password     bool   `help:"Ask once for the SSH password of every host (ssh_password)."`
	Jump         string `placeholder:"HOSTS" help:"SSH jump hosts, comma-separated, or none (ssh_proxy_jump)."`

	Confirm bool `negatable:"" help:"On a terminal, do a dry run first, show what would change on each host and ask before changing anything (-y answers yes)."`
	Yes     bool `short:"y" help:"Answer yes to --confirm: change the hosts without a dry run or a question."`

	OnHost       bool     `negatable:"" name:"on-host" help:"Run each host's scripts on the host itself: upload this star-deploy binary (when the host's OS/arch is this one's, or one given with --on-host-binary) and a bundle of the scripts to ~/.cache/star-deploy there (once: a second run uploads nothing), run them there and stream the events back. Hosts that cannot fall back to the normal way with a notice."`
	OnHostBinary []string `name:"on-host-binary" sep:"none" placeholder:"OS/ARCH=PATH" help:"With --on-host, upload PATH to hosts of OS/ARCH (repeatable), e.g. linux/arm64=./star-deploy-linux-arm64 (a release binary for that platform)."`
	OnHostSkip   []string `name:"on-host-skip" placeholder:"GLOB" help:"With --on-host, leave the files under the deploy's directory that match these globs out of the bundle (comma-separated, repeatable; globs as star-deploy bundle --exclude takes them)."`

	Serial  string   `placeholder:"N|N%" help:"Roll out in batches of N hosts (or N% of them), each batch finishing before the next starts; with --fail-percent a failing batch stops the roll-out."`
	Limit   []string `placeholder:"PATTERNS" help:"Run only on these groups or host globs (comma-separated, repeatable)."`
	Exclude []string `placeholder:"PATTERNS" help:"Do not run on these groups or host globs (comma-separated, repeatable). With bundle: leave out the files that match these globs."`

	Frozen      bool   `negatable:"" help:"Fail instead of writing star-deploy.lock when a remote module is missing from it (the default when CI=true is in the environment; --no-frozen writes it there too)."`
	LockFile    string `placeholder:"FILE" type:"path" help:"The lock file of remote modules (default: star-deploy.lock beside the config file, else beside the first script, else in the current directory)."`
	ModuleCache string `placeholder:"DIR" type:"path" help:"Keep fetched remote modules in DIR, a directory per commit (default: star-deploy/modules in the user's cache directory); a directory written by star-deploy mod vendor serves a run without network."`

	// defaultData is the --data of the config file and the environment,
	// which the --data flags override.
	defaultData []string `kong:"-"`
	// configFile is the config file read ("" when none) and moduleAliases
	// its modules.
	configFile    string            `kong:"-"`
	moduleAliases map[string]string `kong:"-"`
	// registry holds the connectors; git+ssh modules are fetched through
	// its SSH connector (gitSSH).
	registry *connectors.Registry `kong:"-"`
	// frozenSet says whether --frozen or --no-frozen was given (on the
	// command line, in the environment or the config file): if not,
	// CI=true turns it on.
	frozenSet bool `kong:"-"`
}

// sshData returns the connector data that the SSH flags set, asking for the
// secrets they request.
func (f *flags) sshData(prompt func(string) (string, error)) (map[string]string, error) {
	d := map[string]string{}
	if f.User != "" {
		d["ssh_user"] = f.User
	}
	if f.Port != 0 {
		d["ssh_port"] = fmt.Sprint(f.Port)
	}
	if f.Key != "" {
		d["ssh_key"] = f.Key
	}
	if f.Jump != "" {
		d["ssh_proxy_jump"] = f.Jump
	}
	if f.Password {
		pw, err := askSecret(prompt, "--password", "SSH password: ")
		if err != nil {
			return nil, err
		}
		d["ssh_password"] = pw
	}
	if f.SudoPassword {
		pw, err := askSecret(prompt, "--sudo-password", "sudo password: ")
		if err != nil {
			return nil, err
		}
		d[sdrt.SudoPasswordKey] = pw
	}
	return d, nil
}

// runCmd holds the arguments of a deploy, exec or fact run.
type runCmd struct {
	Inventory string   `arg:"" help:"Hosts: @local, @ssh/HOST, HOST, @docker/NAME, @docker/label=K=V, @podman/NAME, @dockerssh/HOST:CONTAINER (or IMAGE), @chroot/DIR, @terraform/OUTPUT, @PLUGIN/ADDR, a comma-separated list, an inventory.star file, an Ansible inventory or dynamic inventory script."`
	Args      []string `arg:"" optional:"" name:"script" help:"Deploy scripts (SCRIPT.star[:FUNC]...), or: MODULE.OP [ARG...] [KEY=VALUE...], or: exec -- CMD..., or: fact NAME [ARG...], or: inventory, or: repl."`
	// bundle, set by pull, serves the scripts, modules, files and host
	// data from a bundle in place of this machine's files.
	bundle *bundleRun `kong:"-"`
	// wire, set by __run-bundle, gets the run's events for the controller
	// of an --on-host run in place of the usual output (onhost.go).
	wire io.Writer `kong:"-"`
}

// connectorsCmd lists the registered connectors.
type connectorsCmd struct{}

// parse parses args with kong. --help and --version come back as a
// kongExit error.
//
// "--" ends the flags: everything after it is appended to the positional
// arguments unparsed, so `@local exec -- ls -la` runs `ls -la`. (kong alone
// stops filling a []string argument at "--".)
//
// Most command lines are runs, which parse first tries with runGrammar, the
// smaller grammar, unless an argument names another command or asks for
// help. A run it parses is the run the whole grammar would parse
// (TestRunGrammarParsesAsCli); anything it refuses is parsed again with
// the whole grammar, which says what is wrong.
func parse(args []string, stdout, stderr io.Writer) (*cli, *kong.Context, error) {
	if err := checkArgsUTF8(args); err != nil {
		return nil, nil, err
	}
	if onlyRun(args) {
		g := &runGrammar{}
		kctx, err := parseGrammar(g, &g.flags, &g.Run, args, stdout, stderr)
		if _, exit := err.(kongExit); exit { // --version, which it printed
			return nil, nil, err
		}
		if err == nil {
			return &cli{topFlags: g.topFlags, flags: g.flags, Run: g.Run}, kctx, nil
		}
	}
	c := &cli{}
	kctx, err := parseGrammar(c, &c.flags, &c.Run, args, stdout, stderr)
	if err != nil {
		return nil, nil, err
	}
	return c, kctx, nil
}

// otherCommands are the names of cli's commands other than run: the
// subcommands, connector (test) and the internal one of --on-host.
var otherCommands = append(slices.Clone(commands), "connector", runBundleCommand)

// onlyRun reports whether args can only be a run: before any "--", no
// argument names another command or asks for help (-h, --help, or -h
// among short flags: -qh).
func onlyRun(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			return true
		case slices.Contains(otherCommands, a), strings.HasPrefix(a, "--help"),
			len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.Contains(a, "h"):
			return false
		}
	}
	return true
}

// parseGrammar parses args into grammar (a *cli or a *runGrammar), whose
// run flags are f and run command run.
func parseGrammar(grammar any, f *flags, run *runCmd, args []string, stdout, stderr io.Writer) (kctx *kong.Context, err error) {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var defs *defaults
	parser, err := kong.New(grammar,
		kong.Name("star-deploy"),
		// No kong.Description: kong would run its interpolation over these
		// 2 KB on every start; printHelp sets it (it has no ${...}).
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit{code}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.ValueFormatter(func(v *kong.Value) string {
			if defs == nil {
				return v.Help
			}
			return defs.helpValue(v)
		}),
		kong.Help(printHelp),
	)
	if err != nil {
		panic("internal error: " + err.Error())
	}
	defer func() {
		if r := recover(); r != nil {
			exit, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			kctx, err = nil, exit
		}
	}()
	if defs, err = loadDefaults(parser, args); err != nil {
		return nil, err
	}
	kctx, err = parser.Parse(negativeValues(parser, args))
	if err != nil {
		return nil, &usageError{fmt.Errorf("%w (see star-deploy --help)", err)}
	}
	if err := checkFlagsApply(kctx); err != nil {
		return nil, err
	}
	if defs.ignored != "" {
		fmt.Fprintln(stderr, defs.ignored)
	}
	f.defaultData = defs.data
	f.configFile, f.moduleAliases = defs.file, defs.modules
	_, f.frozenSet = defs.text["frozen"]
	for _, p := range kctx.Path {
		f.frozenSet = f.frozenSet || p.Flag != nil && p.Flag.Name == "frozen"
	}
	if tail != nil {
		if !strings.HasPrefix(kctx.Command(), "run") {
			return nil, usagef("%s takes no arguments after --", kctx.Command())
		}
		run.Args = append(run.Args, tail...)
	}
	return kctx, nil
}

// checkArgsUTF8 refuses a command-line argument that is not UTF-8 text,
// naming it: kong would silently turn its bad bytes into U+FFFD, and host
// names, data and scripts are text everywhere they are shown. Bytes a
// command needs can be written with printf escapes in the command itself.
func checkArgsUTF8(args []string) error {
	for i, a := range args {
		if utf8.ValidString(a) {
			continue
		}
		what := "argument"
		switch {
		case strings.HasPrefix(a, "--data="):
			what = "--data value"
		case i > 0 && args[i-1] == "--data":
			what = "--data value"
		case slices.Contains(args[:i], "--") || slices.Contains(args[:i], "exec"):
			return usagef("exec: the command word %q is not valid UTF-8 text; write such bytes as printf escapes (printf '\\377')", a)
		}
		return usagef("%s %q is not valid UTF-8 text; host names, --data values and paths must be text", what, a)
	}
	return nil
}

// negativeValues joins a numeric flag and a negative value that follows it
// ("--parallel -1" becomes "--parallel=-1"): kong would take "-1" for a
// short flag, and the check of the value would never say what is wrong.
func negativeValues(parser *kong.Kong, args []string) []string {
	numeric := map[string]bool{}
	for _, group := range parser.Model.AllFlags(false) {
		for _, f := range group {
			if k := flagKind(f); isInt(k) || k == reflect.Float64 {
				numeric["--"+f.Name] = true
			}
		}
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if numeric[args[i]] && i+1 < len(args) && len(args[i+1]) > 1 && args[i+1][0] == '-' && args[i+1][1] >= '0' && args[i+1][1] <= '9' {
			out = append(out, args[i]+"="+args[i+1])
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// execute runs the command args name. The report is nil when no host ran.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) (*sdrt.Report, error) {
	if len(args) > 0 && args[0] == completeCommand {
		complete(stdout, args[1:])
		return nil, nil
	}
	if len(args) == 0 {
		// No arguments at all: show the whole help, as an error.
		_, _, err := parse([]string{"--help"}, stderr, stderr)
		if _, ok := err.(kongExit); ok {
			return nil, &usageError{errors.New("missing INVENTORY and SCRIPT")}
		}
		return nil, err
	}
	c, kctx, err := parse(args, stdout, stderr)
	if err != nil {
		return nil, err
	}
	prompt := terminalPrompt(ctx)
	reg := all.Registry(all.Options{Prompt: prompt, Warn: func(msg string) { fmt.Fprintln(stderr, "star-deploy:", msg) }})
	if err := registerPlugins(reg, c.ConnectorPlugin, os.Getenv("PATH")); err != nil {
		return nil, err
	}
	c.flags.registry = reg
	switch kctx.Command() {
	case "connectors":
		listConnectors(stdout, reg)
		return nil, nil
	case "completion <shell>":
		return nil, c.Completion.run(stdout)
	case "connector test <host>":
		return nil, c.Connector.Test.run(ctx, &c.flags, reg, stdout)
	case "bundle <script>":
		return nil, c.Bundle.run(ctx, &c.flags, reg, prompt, stdout)
	case "pull <source>":
		return c.Pull.run(ctx, &c.flags, reg, prompt, stdout, stderr)
	case runBundleCommand + " <bundle>":
		return c.RunBundle.run(ctx, reg, os.Stdin, stdout, stderr)
	case "mod lock <script>":
		return nil, c.Mod.Lock.run(ctx, &c.flags, stdout)
	case "mod update", "mod update <name>":
		return nil, c.Mod.Update.run(ctx, &c.flags, stdout)
	case "mod verify":
		return nil, c.Mod.Verify.run(ctx, &c.flags, stdout)
	case "mod vendor <dir>":
		return nil, c.Mod.Vendor.run(ctx, &c.flags, stdout)
	case "docs", "docs <topic>":
		if err := c.Docs.run(stdout); err != nil {
			return nil, &usageError{err}
		}
		return nil, nil
	default:
		return c.Run.run(ctx, &c.flags, reg, prompt, stdout, stderr)
	}
}

// mode is what a run does on every host.
type mode int

const (
	modeScripts mode = iota
	modeExec
	modeFact
)

// run deploys: it builds the hosts and the options, compiles every script
// before any host runs, runs them and renders the events.
func (r *runCmd) run(ctx context.Context, f *flags, reg *connectors.Registry, prompt func(string) (string, error), stdout, stderr io.Writer) (*sdrt.Report, error) {
	if err := f.checkRun(); err != nil {
		return nil, err
	}
	ask, err := checkConfirm(f, r.Args)
	if err != nil {
		return nil, err
	}
	inv, hosts, control, err := r.hosts(ctx, f, reg, prompt)
	if err != nil {
		return nil, err
	}
	if r.bundle != nil && r.bundle.name != "" {
		hosts[0].Name = r.bundle.name // an --on-host run: the controller's name
	}

	if len(r.Args) > 0 && r.Args[0] == "inventory" {
		if len(r.Args) > 1 {
			return nil, usagef("inventory takes no arguments, got %q", r.Args[1:])
		}
		return nil, printInventory(stdout, reg, inv, hosts, f.JSON)
	}
	if len(r.Args) > 0 && r.Args[0] == "repl" {
		return replWithModules(ctx, r.Args[1:], f, f.runnerOptions(reg, control), hosts, stdout, stderr)
	}
	m, sources, err := r.sources(f.JSON)
	if r.bundle != nil {
		m, sources, err = modeScripts, r.bundle.sources(), nil
	}
	if err != nil {
		return nil, err
	}

	serial, err := serialBatch(f.Serial, len(hosts))
	if err != nil {
		return nil, err
	}
	var out output // created once every script compiled
	opts := f.runnerOptions(reg, control)
	if r.bundle != nil {
		r.bundle.apply(&opts)
	}
	opts.Serial, opts.FailPercent = serial, f.FailPercent
	opts.Verbose = opts.Verbose || m == modeExec
	opts.OnEvent = func(e sdrt.Event) { out.event(e) }
	var pool *connPool
	if ask {
		// The dry run's connections carry over to the real run.
		pool = newConnPool()
		opts.Connectors = pool.registry(reg)
	}
	runner, progs, remote, err := r.compile(ctx, f, &opts, sources)
	if err != nil {
		return nil, err
	}
	var onHost *onHost
	if f.OnHost && r.bundle == nil {
		if onHost, err = prepareOnHost(ctx, f, m, sources, remote, stderr); err != nil {
			return nil, err
		}
	}
	cfg := outputConfig{
		stdout:  stdout,
		stderr:  stderr,
		json:    f.JSON,
		verbose: f.Verbose > 0,
		quiet:   f.Quiet,
		mode:    m,
		hosts:   len(hosts),
	}
	// runOnce runs progs, compiled once, with runner (on-host: with opts)
	// and renders the run.
	runOnce := func(runner *sdrt.Runner, opts sdrt.Options) *sdrt.Report {
		out = newOutput(cfg)
		if r.wire != nil {
			out = newWireOutput(r.wire)
		}
		start := time.Now()
		var rep *sdrt.Report
		if onHost != nil {
			rep = onHost.run(ctx, opts, progs, hosts)
		} else {
			rep = runner.Run(ctx, progs, hosts)
		}
		if ctx.Err() != nil {
			rep.Interrupted = true
		}
		out.finish(rep, time.Since(start), exitCode(ctx, rep, nil))
		if remote != nil {
			// The files that put() and template() read from remote
			// modules, added to the lock while the hosts ran.
			if err := remote.WriteLock(false); err != nil {
				fmt.Fprintf(stderr, "star-deploy: %v\n", err)
			}
		}
		return rep
	}
	if ask {
		dry := opts
		dry.Dry = true
		return confirmRun(ctx, pool, stderr, func() *sdrt.Report { return runOnce(sdrt.New(dry), dry) }, func() *sdrt.Report { return runOnce(runner, opts) }), nil
	}
	return runOnce(runner, opts), nil
}

// compile resolves the remote modules the scripts load (from the bundle in
// a bundle's run) into opts, compiles every script with a runner of opts
// and writes the lock file: all of it before any host connects.
func (r *runCmd) compile(ctx context.Context, f *flags, opts *sdrt.Options, sources []source) (*sdrt.Runner, []*sdrt.Program, *modules.Resolver, error) {
	var remote *modules.Resolver
	var err error
	if r.bundle == nil {
		remote, err = f.remoteModules(sources)
	} else {
		remote, err = r.bundle.remote()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if remote != nil {
		opts.Remote, opts.RemoteAllow = remote, []string{"git+"}
	}
	runner := sdrt.New(*opts)
	progs := make([]*sdrt.Program, 0, len(sources))
	for _, s := range sources {
		p, err := runner.Compile(ctx, s.filename, s.src)
		if err != nil {
			return nil, nil, nil, err
		}
		progs = append(progs, p)
	}
	if remote != nil {
		if err := remote.WriteLock(false); err != nil {
			return nil, nil, nil, usagef("%w", err)
		}
	}
	return runner, progs, remote, nil
}

// checkRun checks the flags that need no inventory to be wrong.
func (f *flags) checkRun() error {
	if f.Parallel < 0 {
		return usagef("--parallel must be ≥ 0 (0: all hosts at once), got %d", f.Parallel)
	}
	if f.Quiet && f.Verbose > 0 {
		return usagef("-q and -v cannot go together: -q shows less, -v more")
	}
	if f.Port < 0 || f.Port > 65535 {
		return usagef("--port must be between 1 and 65535, got %d", f.Port)
	}
	if f.FailPercent != nil && (*f.FailPercent < 0 || *f.FailPercent > 100) {
		return usagef("--fail-percent must be between 0 and 100, got %d", *f.FailPercent)
	}
	return nil
}

// hosts loads the inventory, expands and selects its entries (--limit,
// --exclude) and builds the hosts to run on, with the data of --data and
// of the flags (which win) and the control arguments that data sets.
func (r *runCmd) hosts(ctx context.Context, f *flags, reg *connectors.Registry, prompt func(string) (string, error)) (*inventory.Inventory, []sdrt.Host, sdrt.Control, error) {
	var control sdrt.Control
	var inv *inventory.Inventory
	var err error
	if r.bundle != nil {
		inv = r.bundle.inventory()
	} else if inv, err = inventory.Load(ctx, r.Inventory); err != nil {
		return nil, nil, control, &usageError{err}
	}
	data, err := parseData(reg, append(slices.Clip(f.defaultData), f.Data...))
	if err != nil {
		return nil, nil, control, err
	}
	if err := expandInventory(ctx, reg, inv, data); err != nil {
		return nil, nil, control, err
	}
	entries, err := inv.Select(splitList(f.Limit), splitList(f.Exclude))
	if err != nil {
		return nil, nil, control, &usageError{err}
	}
	flagData, err := f.sshData(prompt)
	if err != nil {
		return nil, nil, control, err
	}
	for k, v := range flagData {
		if err := reg.CheckKey(k); err != nil {
			return nil, nil, control, &usageError{err}
		}
		data[k] = v // a flag wins over --data
	}
	control, err = sdrt.ControlFromData(sdrt.Control{Sudo: f.Sudo || f.SudoUser != "", SudoUser: f.SudoUser}, anyMap(data))
	if err != nil {
		return nil, nil, control, usagef("--%w", err)
	}
	hosts, err := buildHosts(reg, entries, data, control)
	return inv, hosts, control, err
}

// runnerOptions are the runtime options the flags set, for a run or the
// REPL.
func (f *flags) runnerOptions(reg *connectors.Registry, control sdrt.Control) sdrt.Options {
	return sdrt.Options{
		Connectors:   reg,
		Parallel:     f.Parallel,
		MaxSteps:     f.MaxSteps,
		Stdlib:       stdlib.FS,
		CompileCache: compileCacheDir(),
		Dry:          f.Dry,
		Diff:         f.Diff,
		Verbose:      f.Verbose > 0,
		Trace:        trace(f.Verbose),
		Control:      control,
	}
}

// compileCacheDir is where runs keep compiled stdlib modules
// (sdrt.Options.CompileCache): star-deploy/compiled in the user's cache
// directory, or nowhere when there is none.
func compileCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "star-deploy", "compiled")
}

// commands are the subcommands, which come first; runWords are the words
// that may follow INVENTORY in place of a script.
var (
	commands = []string{"bundle", "completion", "connectors", "docs", "mod", "pull"}
	runWords = []string{"exec", "fact", "inventory", "repl"}
)

// misspeltCommand explains a lone first argument that is neither an
// existing file nor an inventory name but nearly a subcommand or a run word
// (`star-deploy exce`): without it, the word is read as an inventory that
// lacks a script.
func misspeltCommand(arg string) error {
	if _, err := os.Stat(arg); err == nil {
		return nil
	}
	const asHosts = "; read as hosts, it needs a SCRIPT after it"
	if near := spell.Nearest(arg, commands); near != "" {
		return usagef("%q is no command (did you mean %s?)%s", arg, near, asHosts)
	}
	if near := spell.Nearest(arg, runWords); near != "" {
		return usagef("%q is no command (did you mean %s? it follows the hosts: star-deploy INVENTORY %s ...)%s", arg, near, near, asHosts)
	}
	return nil
}

// trace is the runtime's trace level of -v given n times.
func trace(n int) sdrt.Trace {
	switch {
	case n >= 3:
		return sdrt.TraceOutput
	case n == 2:
		return sdrt.TraceCommands
	}
	return sdrt.TraceOff
}

// source is one script to compile: a file (src nil) or generated code.
type source struct {
	filename string
	src      []byte
}

// sources interprets the positional arguments after INVENTORY. asJSON
// (--json) has a fact printed as JSON.
func (r *runCmd) sources(asJSON bool) (mode, []source, error) {
	if _, err := os.Stat(r.Inventory); err != nil && slices.Contains(runWords, r.Inventory) {
		// `star-deploy exec -- ls`: a host named exec is @ssh/exec.
		return 0, nil, usagef("%s follows the hosts: star-deploy INVENTORY %s ...", r.Inventory, r.Inventory)
	}
	if len(r.Args) == 0 {
		if err := misspeltCommand(r.Inventory); err != nil {
			return 0, nil, err
		}
		return 0, nil, usagef("missing SCRIPT after %s: name one or more deploy scripts, or write exec -- CMD, or fact NAME", r.Inventory)
	}
	switch r.Args[0] {
	case "exec":
		argv := r.Args[1:]
		if len(argv) == 0 {
			return 0, nil, usagef("exec: missing command; write exec -- CMD [ARG...]")
		}
		// One argument is a shell command line ('ls | wc -l'); several are
		// the words of one command, each quoted.
		cmd := argv[0]
		if len(argv) > 1 {
			cmd = connectors.QuoteArgs(argv)
		}
		src := fmt.Sprintf("shell(%s, name=%s)\n", syntax.Quote(cmd, false), syntax.Quote("exec", false))
		return modeExec, []source{{"<exec>", []byte(src)}}, nil
	case "fact":
		if len(r.Args) < 2 {
			return 0, nil, usagef("fact: missing fact name; write fact NAME [ARG...], e.g. fact os")
		}
		quoted := make([]string, len(r.Args)-1)
		for i, a := range r.Args[1:] {
			quoted[i] = syntax.Quote(a, false)
		}
		src := fmt.Sprintf("print(fact(%s))\n", strings.Join(quoted, ", "))
		if asJSON {
			// The value, not its Starlark text: a fact event (jsonOutput).
			src = fmt.Sprintf("print(json.encode(fact(%s)))\n", strings.Join(quoted, ", "))
		}
		return modeFact, []source{{"<fact>", []byte(src)}}, nil
	}
	if isAdhoc(r.Args[0]) {
		s, err := adhocSource(r.Args[0], r.Args[1:])
		if err != nil {
			return 0, nil, err
		}
		return modeScripts, []source{s}, nil
	}
	var out []source
	for _, path := range r.Args {
		if s, ok, err := functionSource(path); err != nil {
			return 0, nil, err
		} else if ok {
			out = append(out, s)
			continue
		}
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return 0, nil, usagef("script %s does not exist%s", path, spell.Suffix(path, runWords))
		case err != nil:
			return 0, nil, usagef("script %s: %w", path, err)
		case fi.IsDir():
			return 0, nil, usagef("script %s is a directory", path)
		}
		out = append(out, source{filename: path})
	}
	return modeScripts, out, nil
}

// parseData parses --data KEY=VALUE items. A key that looks like connector
// data of a registered connector but is not one of its fields is an error.
func parseData(reg *connectors.Registry, items []string) (map[string]string, error) {
	data := map[string]string{}
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, usagef("--data %q: want KEY=VALUE", item)
		}
		if !connectors.ValidName(k) {
			return nil, usagef("--data %q: %q is not a valid key (letters, digits and _, not starting with a digit)", item, k)
		}
		if err := reg.CheckKey(k); err != nil {
			return nil, usagef("--data %s: %w", k, err)
		}
		if !utf8.ValidString(v) {
			return nil, usagef("--data %s: the value %q is not valid UTF-8 text; host data is text (put binary content in a file and upload it with put(src=...))", k, v)
		}
		data[k] = v
	}
	return data, nil
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// buildHosts turns inventory entries into runtime hosts: host data is the
// entry's data with --data on top. Its connector keys (ssh_port) are checked
// against the registry and handed to the connector as strings; its control
// keys (sudo) are checked on top of control. An error names the file:line
// that set the key.
func buildHosts(reg *connectors.Registry, entries []inventory.Entry, data map[string]string, control sdrt.Control) ([]sdrt.Host, error) {
	hosts := make([]sdrt.Host, 0, len(entries))
	for _, e := range entries {
		if !utf8.ValidString(e.Name) {
			return nil, usagef("host %q: the name is not valid UTF-8 text; host names are shown in output and events, so they must be text", e.Name)
		}
		hostData := maps.Clone(e.Data)
		if hostData == nil {
			hostData = map[string]any{}
		}
		for k, v := range data {
			hostData[k] = v
		}
		// at names where a key was set: nowhere for --data.
		at := func(k string) string {
			if _, flag := data[k]; !flag && e.At(k) != "" {
				return e.At(k) + ": "
			}
			return ""
		}
		// The keys of the host's own connector must be ones it declares
		// (a typo is an error); other connectors' prefixes are plain data,
		// so that docker_packages means nothing to an SSH host. Control
		// keys must hold values their control argument takes.
		scheme, _ := connectors.SplitName(e.Name)
		connData := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(hostData)) {
			switch {
			case reg.ConnectorKey(scheme, k):
				if err := reg.CheckKey(k); err != nil {
					return nil, usagef("%shost %s: data key %s: %w", at(k), e.Name, k, err)
				}
				switch v := hostData[k].(type) {
				case string:
					connData[k] = v
				case bool, int64, float64:
					connData[k] = fmt.Sprint(v)
				default:
					return nil, usagef("%shost %s: data key %s: want a string, number or bool, got %T", at(k), e.Name, k, v)
				}
			case sdrt.IsControlKey(k):
				if _, err := sdrt.ControlFromData(control, map[string]any{k: hostData[k]}); err != nil {
					return nil, usagef("%shost %s: %w", at(k), e.Name, err)
				}
			}
		}
		t, err := reg.Target(e.Name, connData)
		if err != nil {
			return nil, usagef("%s%w", at(""), err)
		}
		hosts = append(hosts, sdrt.Host{Name: t.Name, Groups: e.Groups, Data: hostData, Target: t})
	}
	return hosts, nil
}

// serialBatch turns --serial N or N% into a batch size for n hosts (0: no
// batches). A percentage rounds up, so every batch has at least one host.
func serialBatch(spec string, n int) (int, error) {
	if spec == "" {
		return 0, nil
	}
	num, pct := strings.CutSuffix(spec, "%")
	v, err := strconv.Atoi(num)
	if err != nil || v < 1 || (pct && v > 100) {
		return 0, usagef("--serial %q: want a number of hosts (2) or a percentage of them (25%%), at least 1", spec)
	}
	if pct {
		return max((n*v+99)/100, 1), nil
	}
	return v, nil
}

// splitList splits repeated, comma-separated flag values (--limit a,b
// --limit c).
func splitList(items []string) []string {
	var out []string
	for _, it := range items {
		for _, p := range strings.Split(it, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// listConnectors prints every registered connector with its data keys.
func listConnectors(w io.Writer, reg *connectors.Registry) {
	for i, f := range reg.Factories() {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "@%s\n", f.Scheme())
		if p, ok := f.(interface{ Path() string }); ok {
			fmt.Fprintf(w, "    plugin: %s\n", p.Path())
		}
		for _, line := range strings.Split(strings.TrimSpace(f.Doc()), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
		fields := f.Fields()
		if len(fields) == 0 {
			fmt.Fprintln(w, "    data keys: none")
			continue
		}
		fmt.Fprintln(w, "    data keys:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, fld := range fields {
			var notes []string
			if fld.Default != "" {
				notes = append(notes, "default "+fld.Default)
			}
			if fld.Secret {
				notes = append(notes, "(secret)")
			}
			fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\n", fld.Name, fld.Type, strings.Join(notes, " "), fld.Doc)
		}
		tw.Flush()
	}
}
