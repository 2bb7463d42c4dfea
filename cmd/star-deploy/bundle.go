package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/star-deploy/star-deploy/bundle"
	"github.com/star-deploy/star-deploy/bundle/signature"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/atomicfile"
	"github.com/star-deploy/star-deploy/inventory"
	"github.com/star-deploy/star-deploy/modules"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// bundleCmd packs deploy scripts into a bundle (package bundle).
type bundleCmd struct {
	Scripts   []string `arg:"" name:"script" type:"existingfile" help:"Deploy scripts, in the order they run."`
	Output    string   `short:"o" required:"" placeholder:"FILE" type:"path" help:"Write the bundle to FILE (e.g. site.bundle); with --sign, the signature to FILE.sig."`
	Root      string   `placeholder:"DIR" type:"existingdir" help:"The deploy's directory: every script and module it loads must be under DIR, and its files are packed (default: the first script's directory)."`
	Include   []string `placeholder:"GLOB" help:"Pack only the files that match one of these globs (repeatable; default: every file under the root but .git, .hg, .svn and *.bundle files). Scripts and the modules they load are always packed."`
	Sign      string   `placeholder:"KEY" type:"path" help:"Sign the bundle with the SSH private key KEY, in the format of ssh-keygen -Y sign (namespace star-deploy-bundle), into FILE.sig. An encrypted key asks for its passphrase on the terminal."`
	Inventory string   `placeholder:"INVENTORY" help:"Carry the groups and host data of every host of INVENTORY (an inventory file), so that star-deploy pull runs with the data of the host it runs on (pull --host). Secret keys are left out; the rest is readable by whoever can read the bundle."`
}

const bundleDetail = `A bundle is one file holding the scripts, every module they load (the
@stdlib modules included, so that the code that runs is the code that was
signed, and remote modules at the commits star-deploy.lock pins: see
star-deploy mod --help), and the files under the deploy's directory that put(src=),
template() and local_tree() read: --include keeps only the files that match
its globs, --exclude leaves out those that match. A glob matches a path, or a
directory above it ("secrets", "files/*"); a glob without a slash matches any
name in the path ("*.pyc"). The same inputs give byte-identical bundles.

  star-deploy bundle deploy.star --exclude 'secrets' --sign ~/.ssh/release -o site.bundle
  ssh-keygen -Y verify -f allowed_signers -I release -n star-deploy-bundle \
      -s site.bundle.sig < site.bundle

Run it on a host with star-deploy pull.`

// run writes the bundle, and its signature with --sign.
func (b *bundleCmd) run(ctx context.Context, f *flags, reg *connectors.Registry, prompt func(string) (string, error), stdout io.Writer) error {
	opts := bundle.Options{
		Scripts:     b.Scripts,
		Root:        b.Root,
		Include:     splitList(b.Include),
		Exclude:     splitList(f.Exclude),
		Output:      b.Output,
		Stdlib:      stdlib.FS,
		StarDeploy:  versionString(),
		FileOptions: sdrt.FileOptions(),
	}
	if b.Inventory != "" {
		hosts, dropped, err := bundleHosts(ctx, reg, b.Inventory)
		if err != nil {
			return err
		}
		opts.Hosts = hosts
		if len(dropped) > 0 {
			fmt.Fprintf(stdout, "left out the secret data keys %s\n", strings.Join(dropped, ", "))
		}
	}
	res, err := f.resolver(b.Scripts, f.frozen())
	if err != nil {
		return err
	}
	opts.Remote, opts.RemoteFiles = bundleRemote(ctx, res), bundleFiles(ctx, res)
	opts.ModuleAliases = f.moduleAliases
	data, m, err := bundle.Make(opts)
	if err != nil {
		return usagef("bundle: %w", err)
	}
	if err := res.WriteLock(false); err != nil {
		return usagef("bundle: %w", err)
	}
	var sig []byte
	if b.Sign != "" {
		if sig, err = signature.Sign(data, b.Sign, prompt); err != nil {
			return usagef("bundle: %w", err)
		}
	}
	if err := writeAtomic(b.Output, data); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if sig != nil {
		if err := writeAtomic(b.Output+".sig", sig); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	remote := ""
	if len(m.Modules) > 0 {
		remote = ", " + count(len(m.Modules), "remote file")
	}
	fmt.Fprintf(stdout, "%s: %s, %s, %s%s, sha256 %s\n", b.Output, count(len(m.Scripts), "script"), count(len(m.Files), "file"), count(len(m.Stdlib), "stdlib module"), remote, bundle.Hash(data))
	if sig != nil {
		fmt.Fprintf(stdout, "%s.sig: signed with %s (namespace %s)\n", b.Output, b.Sign, signature.Namespace)
	}
	return nil
}

// count is "1 file" or "3 files".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// bundleHosts reads the hosts of an inventory for a bundle, without their
// secret keys (returned, sorted, in dropped).
func bundleHosts(ctx context.Context, reg *connectors.Registry, spec string) (map[string]bundle.HostData, []string, error) {
	inv, err := inventory.Load(ctx, spec)
	if err != nil {
		return nil, nil, &usageError{err}
	}
	hosts := map[string]bundle.HostData{}
	drop := map[string]bool{}
	for _, e := range inv.Hosts {
		data := map[string]any{}
		for k, v := range e.Data {
			if reg.IsSecretKey(k) || k == sdrt.SudoPasswordKey {
				drop[k] = true
				continue
			}
			data[k] = v
		}
		hosts[e.Name] = bundle.HostData{Groups: e.Groups, Data: data}
	}
	return hosts, slices.Sorted(maps.Keys(drop)), nil
}

// writeAtomic writes data to p through a temporary file in its directory.
func writeAtomic(p string, data []byte) error { return atomicfile.Write(p, data) }

// bundleRun is what a run takes from a bundle in place of files on this
// machine: its scripts, modules and files, its stdlib, and host data.
type bundleRun struct {
	b    *bundle.Bundle
	host *bundle.HostData // nil: no inventory data
	name string           // the host's name, when not @local (an --on-host run)
	// compileCache, when set, is where the run keeps compiled stdlib
	// modules in place of the user's cache (pull's --cache-dir/compiled).
	compileCache string
}

// sources are the bundle's scripts, read from the bundle when compiled.
func (br *bundleRun) sources() []source {
	out := make([]source, 0, len(br.b.Manifest.Scripts))
	for _, s := range br.b.Manifest.Scripts {
		out = append(out, source{filename: s})
	}
	return out
}

// apply makes opts read scripts, modules and local files from the bundle
// only: the runtime's sandbox with every effect allowed, on @local, with
// no cap on print() output.
func (br *bundleRun) apply(opts *sdrt.Options) {
	opts.Stdlib = br.b.Stdlib()
	if br.compileCache != "" {
		opts.CompileCache = br.compileCache
	}
	opts.Sandbox = &sdrt.Sandbox{
		Files:      br.b.Files(),
		Effects:    sdrt.EffectPure | sdrt.EffectReadHost | sdrt.EffectWriteHost | sdrt.EffectLocalFS | sdrt.EffectNetwork | sdrt.EffectLocalExec,
		Connectors: []string{"local"},
		MaxOutput:  math.MaxInt,
	}
}

// remote returns the remote modules of the bundle, served from the bundle
// at the commits it was made with (nothing is fetched), or nil when it has
// none.
func (br *bundleRun) remote() (*modules.Resolver, error) {
	m := br.b.Manifest
	if len(m.ModuleSources) == 0 {
		return nil, nil
	}
	lock := &modules.Lock{Version: 1, Sources: map[string]*modules.Locked{}}
	for src, commit := range m.ModuleSources {
		e := &modules.Locked{Commit: commit, Files: map[string]string{}}
		for _, f := range m.Modules {
			if p, ok := strings.CutPrefix(f.Path, commit+"/"); ok {
				e.Files[p] = "sha256:" + f.SHA256
			}
		}
		lock.Sources[src] = e
	}
	res, err := modules.New(modules.Options{Lock: lock, Files: br.b.Modules(), Aliases: m.ModuleAliases, Frozen: true})
	if err != nil {
		return nil, usagef("bundle %s: %w", br.b.Name, err)
	}
	return res, nil
}

// inventory is the one host a bundle runs on, @local, with the bundle's
// data of that host.
func (br *bundleRun) inventory() *inventory.Inventory {
	e := inventory.Entry{Name: "@local"}
	if br.host != nil {
		e.Groups, e.Data = br.host.Groups, br.host.Data
	}
	return &inventory.Inventory{Hosts: []inventory.Entry{e}}
}

// bundleHost picks the inventory data of the host named name (or, when
// name is empty, this machine's hostname) from a bundle: an entry of that
// name, or one whose address is that host ("@ssh/deploy@web1:22" for
// web1), or whose address is its short name.
func bundleHost(b *bundle.Bundle, name string) (*bundle.HostData, error) {
	hosts := b.Manifest.Hosts
	if len(hosts) == 0 {
		if name != "" {
			return nil, usagef("pull --host %s: the bundle %s carries no inventory data (make it with star-deploy bundle --inventory FILE)", name, b.Name)
		}
		return nil, nil
	}
	explicit := name != ""
	if !explicit {
		h, err := os.Hostname()
		if err != nil {
			return nil, usagef("pull: this machine's hostname: %v; pass --host NAME", err)
		}
		name = h
	}
	short, _, _ := strings.Cut(name, ".")
	for _, want := range []string{name, short} {
		if hd, ok := hosts[want]; ok {
			return &hd, nil
		}
		for _, k := range slices.Sorted(maps.Keys(hosts)) {
			if h := addrHost(k); h == want || strings.SplitN(h, ".", 2)[0] == want {
				hd := hosts[k]
				return &hd, nil
			}
		}
	}
	names := slices.Sorted(maps.Keys(hosts))
	if len(names) > 5 {
		names = append(names[:5], "...")
	}
	how := "this machine's hostname " + name
	if explicit {
		how = "--host " + name
	}
	return nil, usagef("pull: the bundle %s carries the data of %s, not of %s: pass --host with one of its host names", b.Name, strings.Join(names, ", "), how)
}

// addrHost is the host of an inventory name: "@ssh/deploy@web1:22" is web1.
func addrHost(name string) string {
	_, addr := connectors.SplitName(name)
	if i := strings.LastIndex(addr, "@"); i >= 0 {
		addr = addr[i+1:]
	}
	if h, _, ok := strings.Cut(addr, ":"); ok {
		addr = h
	}
	return addr
}

// bundleRemote serves a bundle's remote modules from res, at their locked
// commits (nil when res is: the scripts load none).
func bundleRemote(ctx context.Context, res *modules.Resolver) func(from, name string) (bundle.RemoteModule, error) {
	if res == nil {
		return nil
	}
	return func(from, name string) (bundle.RemoteModule, error) {
		m, err := res.Module(ctx, from, name)
		return bundleModule(m), err
	}
}

// bundleFiles serves the other files of a bundle's remote sources from res
// (see bundle.Options.RemoteFiles).
func bundleFiles(ctx context.Context, res *modules.Resolver) func(source string) ([]bundle.RemoteModule, error) {
	if res == nil {
		return nil
	}
	return func(source string) ([]bundle.RemoteModule, error) {
		files, err := res.Files(ctx, source)
		var out []bundle.RemoteModule
		for _, m := range files {
			out = append(out, bundleModule(m))
		}
		return out, err
	}
}

func bundleModule(m modules.Module) bundle.RemoteModule {
	return bundle.RemoteModule{Key: m.Key, Source: m.Source, Commit: m.Commit, Path: m.Path, Data: m.Data}
}
