package ssh

import "github.com/star-deploy/star-deploy/connectors"

// fields declares the ssh_* connector data keys (pyinfra's DataMeta).
func fields() []connectors.Field {
	return []connectors.Field{
		{Name: "ssh_hostname", Type: "string", Doc: "Host name or address to connect to, instead of the inventory name (and of HostName in ~/.ssh/config)."},
		{Name: "ssh_port", Type: "int", Default: "22", Doc: "TCP port of the SSH server."},
		{Name: "ssh_user", Type: "string", Default: "the local user", Doc: "User to log in as."},
		{Name: "ssh_password", Type: "string", Secret: true, Doc: "Password for password and keyboard-interactive authentication."},
		{Name: "ssh_key", Type: "path", Doc: "Private key file, tried before the IdentityFile entries of ~/.ssh/config."},
		{Name: "ssh_key_password", Type: "string", Secret: true, Doc: "Passphrase of an encrypted private key; without it, star-deploy asks on a terminal."},
		{Name: "ssh_allow_agent", Type: "bool", Default: "true", Doc: "Offer the keys of the ssh-agent at SSH_AUTH_SOCK (or IdentityAgent)."},
		{Name: "ssh_forward_agent", Type: "bool", Default: "false", Doc: "Forward the ssh-agent to the host (not implemented yet; accepted for compatibility)."},
		{Name: "ssh_config_file", Type: "path", Default: "~/.ssh/config", Doc: "OpenSSH client config to read Host blocks from; a missing default file is ignored."},
		{Name: "ssh_known_hosts_file", Type: "path", Default: "~/.ssh/known_hosts", Doc: "known_hosts file to check host keys against and to record new ones in."},
		{Name: "ssh_strict_host_key_checking", Type: "string", Default: "accept-new", Doc: "yes: only known host keys; accept-new: record keys of new hosts, refuse changed ones; no: check nothing (insecure, warned about)."},
		{Name: "ssh_proxy_jump", Type: "string", Doc: "Jump hosts, comma-separated (user@host:port or aliases), as ProxyJump; none disables one from the config."},
		{Name: "ssh_connect_timeout", Type: "duration", Default: "10", Doc: "Seconds to connect, covering the TCP connection and the SSH handshake."},
		{Name: "ssh_connect_retries", Type: "int", Default: "2", Doc: "Retries, with exponential backoff and jitter, when the connection is refused or reset."},
		{Name: "ssh_keepalive_interval", Type: "duration", Default: "15", Doc: "Seconds between keepalives; after 3 unanswered the host fails. 0 disables them."},
	}
}
