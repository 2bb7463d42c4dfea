// Package ssh is the native SSH connector: golang.org/x/crypto/ssh for the
// transport and sessions, github.com/pkg/sftp for files,
// a reader of ~/.ssh/config that follows OpenSSH's readconf.c (Host, Match,
// Include; see config.go for why not github.com/kevinburke/ssh_config) and
// github.com/skeema/knownhosts for host keys with OpenSSH semantics.
//
// One TCP connection per host for the whole run; commands run on
// concurrent sessions; one SFTP session is reused for every transfer. Host
// keys are verified by default (StrictHostKeyChecking accept-new).
//
// This package must not import Starlark or another connector; it is the
// only package that imports x/crypto/ssh and pkg/sftp.
package ssh
