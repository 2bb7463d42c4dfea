package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/star-deploy/star-deploy/modules"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// modCmd manages the remote modules of a deploy and its lock file.
type modCmd struct {
	Lock   modLockCmd   `cmd:"" help:"Resolve the remote modules the scripts load and write star-deploy.lock: the commit of each source and the SHA-256 of each file (commits already locked stay; sources and files no script loads are dropped)."`
	Update modUpdateCmd `cmd:"" help:"Move a source of the lock file (a name of the config file's modules, or git+URL@REF), or every source, to the commit its REF names now (a branch's head; for a version prefix such as @v1, the newest tag v1.x.y)."`
	Verify modVerifyCmd `cmd:"" help:"Check every file of the lock file against the repository at the locked commit and against the cache."`
	Vendor modVendorCmd `cmd:"" help:"Copy every locked module to DIR, laid out as the cache is, for runs without network: star-deploy --module-cache DIR --frozen ..."`
}

type modLockCmd struct {
	Scripts []string `arg:"" name:"script" type:"existingfile" help:"The deploy scripts whose loads to lock."`
}

type modUpdateCmd struct {
	Name string `arg:"" optional:"" help:"The source to move: a name of the config file's modules or git+URL@REF (default: every locked source)."`
}

type modVerifyCmd struct{}

type modVendorCmd struct {
	Dir string `arg:"" type:"path" help:"The directory to write the modules to."`
}

const modDetail = `A deploy loads shared modules from git repositories:
  load("git+https://git.example.com/ops/web-modules@v1.4.0//nginx.star", "nginx")
or, with modules = {"web": "git+https://git.example.com/ops/web-modules@v1.4.0"}
in the config file, load("@web//nginx.star", "nginx"). star-deploy.lock, beside
the config file (or the first script when there is none), pins each source's
commit and each file's SHA-256. A run adds what the lock lacks, unless
--frozen or CI=true: then it fails, and star-deploy mod lock writes it.
git+ssh:// sources are fetched through the SSH connector, as a deploy host is
reached: ~/.ssh/config (Host aliases, User, IdentityFile, ProxyJump, ...), the
agent and ~/.ssh/known_hosts apply; the host runs git-upload-pack.`

// lockFile is where the lock file of a deploy lives: beside the config
// file if one was read, else beside the first script (else in the current
// directory).
func (f *flags) lockFile(scripts []string) string {
	switch {
	case f.LockFile != "":
		return f.LockFile
	case f.configFile != "":
		return filepath.Join(filepath.Dir(f.configFile), modules.LockName)
	case len(scripts) > 0:
		return filepath.Join(filepath.Dir(scripts[0]), modules.LockName)
	}
	return modules.LockName
}

// frozen reports whether the lock file may not be written: --frozen, or
// CI=true in the environment unless --no-frozen.
func (f *flags) frozen() bool {
	return f.Frozen || !f.frozenSet && os.Getenv("CI") == "true"
}

// resolver returns the remote modules of a deploy of scripts.
func (f *flags) resolver(scripts []string, frozen bool) (*modules.Resolver, error) {
	r, err := modules.New(gitAccess(modules.Options{
		CacheDir: f.ModuleCache,
		LockFile: f.lockFile(scripts),
		Aliases:  f.moduleAliases,
		Frozen:   frozen,
	}, f.gitSSH()))
	if err != nil {
		if f.configFile != "" {
			return nil, usagef("%s: %w", f.configFile, err)
		}
		return nil, usagef("%w", err)
	}
	return r, nil
}

// lockedResolver is resolver for the commands that work on an existing
// lock file (mod update, verify, vendor).
func (f *flags) lockedResolver(what string, frozen bool) (*modules.Resolver, error) {
	if _, err := os.Stat(f.lockFile(nil)); err != nil {
		return nil, usagef("mod %s: no lock file: %v; star-deploy mod lock SCRIPT.star writes it (or name it with --lock-file)", what, err)
	}
	return f.resolver(nil, frozen)
}

// remoteModules returns the remote modules of a run of sources, or nil
// when no source is a script file (exec, fact, an ad-hoc operation).
func (f *flags) remoteModules(sources []source) (*modules.Resolver, error) {
	var scripts []string
	for _, s := range sources {
		if s.src == nil {
			scripts = append(scripts, s.filename)
		}
	}
	if len(scripts) == 0 {
		return nil, nil
	}
	return f.resolver(scripts, f.frozen())
}

func (m *modLockCmd) run(ctx context.Context, f *flags, stdout io.Writer) error {
	res, err := f.resolver(m.Scripts, false)
	if err != nil {
		return err
	}
	runner := sdrt.New(sdrt.Options{Stdlib: stdlib.FS, Remote: res, RemoteAllow: []string{"git+"}})
	for _, s := range m.Scripts {
		if _, err := runner.Compile(ctx, s, nil); err != nil {
			return err
		}
	}
	if err := res.WriteLock(true); err != nil {
		return usagef("mod lock: %w", err)
	}
	l := res.Lock()
	files := 0
	for _, e := range l.Sources {
		files += len(e.Files)
	}
	fmt.Fprintf(stdout, "%s: %d sources, %d files\n", f.lockFile(m.Scripts), len(l.Sources), files)
	return nil
}

func (m *modUpdateCmd) run(ctx context.Context, f *flags, stdout io.Writer) error {
	res, err := f.lockedResolver("update", false)
	if err != nil {
		return err
	}
	changes, err := res.Update(ctx, m.Name)
	if err != nil {
		return usagef("mod update: %w", err)
	}
	if err := res.WriteLock(false); err != nil {
		return usagef("mod update: %w", err)
	}
	for _, c := range changes {
		fmt.Fprintf(stdout, "%s: %s -> %s\n", c.Source, c.Old[:12], c.New[:12])
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "every source is at the commit its REF names")
	}
	return nil
}

func (m *modVerifyCmd) run(ctx context.Context, f *flags, stdout io.Writer) error {
	res, err := f.lockedResolver("verify", true)
	if err != nil {
		return err
	}
	n, err := res.Verify(ctx)
	if err != nil {
		return usagef("mod verify: %s does not hold:\n%w", f.lockFile(nil), err)
	}
	fmt.Fprintf(stdout, "%s: %d files verified\n", f.lockFile(nil), n)
	return nil
}

func (m *modVendorCmd) run(ctx context.Context, f *flags, stdout io.Writer) error {
	res, err := f.lockedResolver("vendor", true)
	if err != nil {
		return err
	}
	n, err := res.Vendor(ctx, m.Dir)
	if err != nil {
		return usagef("mod vendor: %w", err)
	}
	fmt.Fprintf(stdout, "%d files in %s; run with --module-cache %s\n", n, m.Dir, m.Dir)
	return nil
}

// replWithModules runs the REPL with the remote modules of the lock file
// beside the config file (or in the current directory): a line may load
// them as a script does, and the lock is written when the REPL ends.
func replWithModules(ctx context.Context, args []string, f *flags, opts sdrt.Options, hosts []sdrt.Host, stdout, stderr io.Writer) (*sdrt.Report, error) {
	res, err := f.resolver(nil, f.frozen())
	if err != nil {
		return nil, err
	}
	opts.Remote, opts.RemoteAllow = res, []string{"git+"}
	rep, err := runREPL(ctx, args, f, opts, hosts, stdout, stderr)
	if werr := res.WriteLock(false); werr != nil && err == nil {
		fmt.Fprintf(stderr, "star-deploy: %v\n", werr)
	}
	return rep, err
}
