// Package ssh is the native SSH connector: golang.org/x/crypto/ssh for the
// transport and sessions, github.com/pkg/sftp for files,
// a reader of ~/.ssh/config and /etc/ssh/ssh_config that follows
// OpenSSH's readconf.c (Host, Match, Include; see config.go for why not
// github.com/kevinburke/ssh_config) and
// github.com/skeema/knownhosts for host keys with OpenSSH semantics.
//
// One TCP connection per host for the whole run; commands run on
// concurrent sessions; one SFTP session is reused for every transfer. Host
// keys are verified by default (StrictHostKeyChecking accept-new). With
// StrictHostKeyChecking no, a key that contradicts known_hosts (a changed
// key, not an unknown host) is let through with a warning naming the host
// and the known_hosts file:line, but, as in OpenSSH, that connection sends
// no password and answers no keyboard-interactive prompt; key and agent
// authentication go on.
//
// Agent forwarding (ssh_forward_agent, ForwardAgent) serves the host's
// auth-agent@openssh.com channels from the local agent socket. It is asked
// for on the connection's first session only: OpenSSH's sshd grants one
// request per connection and gives its socket to every later session. A
// host whose key was not verified (see above) gets no agent: a warning says
// so, and the connection goes on without.
//
// Cancelling never waits on a host that does not answer: Run returns at
// once and stops the remote process group in the background within
// killTimeout, Put and Get return within answerGrace, and in both cases a
// host that has not answered by then has its connection closed. Close
// waits for those cleanups (each bounded), then closes the connection
// before SFTP, whose graceful close would wait for the host.
//
// This package must not import Starlark or another connector; it is the
// only package that imports x/crypto/ssh and pkg/sftp.
package ssh
