package ssh

import (
	"time"
)

// settings is the resolved connection configuration of one host: the
// inventory address and connector data on top of ~/.ssh/config on top of
// OpenSSH's defaults. Resolving it does no network I/O.
type settings struct {
	Alias                 string        // the host as the user named it ("db1", "deploy@10.0.0.5:2222")
	Hostname              string        // what to dial
	Port                  int           // default 22
	User                  string        // default: the local user
	IdentityFiles         []string      // expanded paths, in order of preference
	IdentitiesOnly        bool          // only IdentityFiles, no agent keys beyond them
	IdentityAgent         string        // agent socket path; "" = $SSH_AUTH_SOCK; "none" disables
	Password              string        // ssh_password (secret)
	KeyPassphrase         string        // ssh_key_password (secret)
	AllowAgent            bool          // ssh_allow_agent (default true)
	ForwardAgent          bool          // ssh_forward_agent
	ProxyJump             []string      // hops in order ("user@host:port" or aliases); nil = direct
	StrictHostKeyChecking string        // "yes", "accept-new" or "no" (normalised)
	KnownHostsFiles       []string      // UserKnownHostsFile entries, expanded; the first receives new keys
	HostKeyAlias          string        // name to look up in known_hosts instead of Hostname
	ConnectTimeout        time.Duration // covers TCP dial and the SSH handshake; 0 = none
	ConnectRetries        int           // retries for refused/reset connections
	KeepaliveInterval     time.Duration // ServerAliveInterval; 0 = off
	KeepaliveCountMax     int           // ServerAliveCountMax, default 3
	SessionPerCommand     bool          // ssh_persistent_shell=false: one session per command, no persistent shell
	ShellPerl             bool          // ssh_shell_perl (default true): persistent shells run the Perl server where the host has perl
	PerlFiles             bool          // ssh_perl_files (default true): the Perl server answers file probes (native.go)
	ShellSpares           bool          // ssh_shell_spares (default true): the Perl server starts each command's sh ahead of it
}
