// Package sshtest provides real SSH servers for tests.
//
// Start runs OpenSSH's sshd as the current user on a loopback address
// (127.0.0.1 or any of 127.0.0.2–127.0.0.254, which Linux routes without
// configuration) with generated host and client keys. Fleet runs sshd in
// Debian containers built once with debootstrap and docker import, with a
// passwordless-sudo user and a user whose sudo needs a password. KeyPair and
// Agent generate keys and run ssh-agent for authentication tests.
//
// Everything here drives the real programs (sshd, ssh-keygen, ssh-agent,
// debootstrap, the docker CLI) through os/exec. It must not import
// golang.org/x/crypto/ssh: only connectors/ssh may (internal/archtest), so
// keys are exchanged as files and authorized_keys-format strings.
//
// When a program is missing the test is skipped with the reason, except
// under CI=true, where a skip is a failure (see Skip). Nothing listens
// beyond 127.0.0.0/8: containers publish their port on 127.0.0.1 only.
package sshtest
