// Package modules serves the shared Starlark modules that deploy scripts
// load from git repositories:
//
//	load("git+https://git.example.com/ops/web-modules@v1.4.0//nginx.star", "nginx")
//	load("@web//nginx.star", "nginx") // "web" named in the config file's modules
//
// A Resolver turns such a load into a key (Resolve) and the key into the
// module's text (Read), which is what runtime.Options.Remote asks for. It
// resolves each source's REF (a tag, a branch, a commit, or a version
// prefix such as v1 for the newest tag v1.x.y; none means the repository's
// HEAD) to a commit once, pins the commit and the SHA-256 of
// every file read in a lock file (star-deploy.lock, see Lock), and keeps
// each commit's files in a cache keyed by the commit, so that a locked run
// needs no network. Repositories are fetched with go-git, in Go: the
// controller needs no git command. git+file:// repositories are read in
// place; git+https://, git+http:// and git+ssh:// ones are fetched into a
// bare repository in the cache. With Options.SSH (an SSHRunner, which
// star-deploy fills with its SSH connector), git+ssh runs git-upload-pack
// on the host through it and speaks git's pack protocol over the command's
// standard input and output (sshgit.go, go-git's public packp types behind
// a transport installed for ssh://); without, go-git's own SSH transport:
// the ssh-agent for keys, $SSH_KNOWN_HOSTS or ~/.ssh/known_hosts for host
// keys, HostName and Port of ~/.ssh/config. A git+https:// or git+http://
// server gets the Options.Credentials of its host (Netrc: ~/.netrc) and,
// when it asks for credentials those do not hold, those of Options.Helper
// (GitCredentials: git's credential helpers), as git asks them.
//
// It must not import the runtime, builtins or connectors: the runtime sees
// it through the runtime.RemoteModules interface, and only this package
// imports go-git.
package modules
