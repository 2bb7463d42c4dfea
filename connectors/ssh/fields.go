package ssh

import "github.com/star-deploy/star-deploy/connectors"

// fields declares the ssh_* connector data keys (pyinfra's DataMeta). Each
// one takes the place of an ssh(1) command-line option, so it wins over
// ~/.ssh/config; see resolveSettings. An empty value counts as unset.
func fields() []connectors.Field {
	return []connectors.Field{
		{Name: "ssh_hostname", Type: "string",
			Doc: "Host name or address to connect to, instead of the inventory name and of HostName in the SSH config. Match host blocks see it, as with `ssh -o HostName=`."},
		{Name: "ssh_port", Type: "int", Default: "22",
			Doc: "TCP port of the SSH server, from 1 to 65535. It wins over a port in the host name and over Port in the SSH config."},
		{Name: "ssh_user", Type: "string", Default: "the local user",
			Doc: "User to log in as. It wins over user@ in the host name and over User in the SSH config."},
		{Name: "ssh_password", Type: "string", Secret: true,
			Doc: "Password for password and keyboard-interactive authentication, tried after the keys."},
		{Name: "ssh_key", Type: "path",
			Doc: "Private key file, tried before the IdentityFile entries of the SSH config (as `ssh -i`). `~` and the %-tokens of IdentityFile are expanded."},
		{Name: "ssh_key_password", Type: "string", Secret: true,
			Doc: "Passphrase of an encrypted private key. Without it, star-deploy asks on a terminal, or fails naming this key when there is none."},
		{Name: "ssh_allow_agent", Type: "bool", Default: "true",
			Doc: "Offer the keys of the ssh-agent at SSH_AUTH_SOCK, or at IdentityAgent of the SSH config. false never contacts an agent."},
		{Name: "ssh_forward_agent", Type: "bool", Default: "false",
			Doc: "Forward the local ssh-agent (IdentityAgent of the SSH config, else SSH_AUTH_SOCK) to the host, so that commands there (git over SSH) use its keys, as `ssh -A`. It wins over ForwardAgent of the SSH config. Refused, with a warning, when the host key was not verified (ssh_strict_host_key_checking=no and a key that known_hosts does not hold); never forwarded to jump hosts."},
		{Name: "ssh_config_file", Type: "path", Default: "~/.ssh/config",
			Doc: "OpenSSH client config to read Host, Match and Include blocks from, as `ssh -F`: it replaces both ~/.ssh/config and the system-wide /etc/ssh/ssh_config, which are otherwise read in that order. A missing default file is ignored, a missing named file is an error, and none reads no config."},
		{Name: "ssh_known_hosts_file", Type: "path", Default: "~/.ssh/known_hosts",
			Doc: "known_hosts file to check host keys against and to record the keys of new hosts in. It replaces UserKnownHostsFile of the SSH config (default: ~/.ssh/known_hosts, then ~/.ssh/known_hosts2)."},
		{Name: "ssh_strict_host_key_checking", Type: "string", Default: "accept-new",
			Doc: "yes: connect only to hosts whose key is known; accept-new: record the keys of new hosts and refuse changed ones; no: connect whatever the key (insecure, and warned about), but a key that contradicts known_hosts gets no password or keyboard-interactive answer, as in OpenSSH. StrictHostKeyChecking ask of the SSH config counts as yes."},
		{Name: "ssh_proxy_jump", Type: "string",
			Doc: "Jump hosts to connect through, comma-separated and in order (user@host:port or aliases of the SSH config), as ProxyJump. none connects directly even if the SSH config names jump hosts."},
		{Name: "ssh_connect_timeout", Type: "duration", Default: "10",
			Doc: "Seconds (or a duration such as 1m30s) to connect, covering the TCP connection and the SSH handshake; 0 waits for ever. It wins over ConnectTimeout of the SSH config."},
		{Name: "ssh_connect_retries", Type: "int", Default: "2",
			Doc: "How many more times to try, with exponential backoff and jitter, when a connection is refused or reset. 0 tries once."},
		{Name: "ssh_keepalive_interval", Type: "duration", Default: "15",
			Doc: "Seconds between keepalives, as ServerAliveInterval; after ServerAliveCountMax (3) unanswered ones the host fails. 0 turns them off."},
		{Name: "ssh_persistent_shell", Type: "bool", Default: "true",
			Doc: "Run commands through a few long-lived `sh` processes on the host (one SSH session each), each command in its own process group, instead of opening a session per command (an sshd child, a login shell and two `sh`). Hosts whose shell cannot (no setsid or mkfifo) fall back to a session per command by themselves, as do PTY commands; false always opens one."},
		{Name: "ssh_shell_perl", Type: "bool", Default: "true",
			Doc: "Where the host has perl (any perl 5; Debian and Ubuntu always do), let each persistent shell hand its commands to a small Perl program that uses no module: a command then costs the host one fork and one exec of `sh` in its own process group, in place of a subshell, setsid and sh. The command runs the same sh with the same environment, directory and input; it gets a process group of its own rather than a session. A host whose perl cannot start it uses sh by itself; false always uses sh."},
		{Name: "ssh_shell_spares", Type: "bool", Default: "true",
			Doc: "Let the Perl server start each command's `sh` before the command comes: a spare `sh` waits for its script on a pipe while the previous command runs, so a command waits for no fork or exec (about 0.4 ms less per command on loopback), for about 5% more CPU on the host per command and, from a shell's second command on, two more `sh` per shell (a first spare that proves the host's sh can run a script from a pipe, and the one left unused at the end). Worth turning off only where many hosts share a machine's CPU, as containers on one machine do. false starts each `sh` when its command comes."},
		{Name: "ssh_perl_files", Type: "bool", Default: "true",
			Doc: "Let the Perl server answer the file probes that run as the login user (the stat, hash and read of the file and content facts, put and template, the tree fact's listing, chmod and chown, the sweep of temporary files) with its own system calls, in one round trip and no fork, as @local does, and write files in place of SFTP. What it cannot answer as the shell would goes to the shell, what it cannot create to SFTP. false always runs the shell's probes and SFTP (as without perl)."},
	}
}
