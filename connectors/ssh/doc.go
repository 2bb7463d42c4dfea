// Package ssh is the native SSH connector: golang.org/x/crypto/ssh for the
// transport and sessions, github.com/pkg/sftp for files,
// a reader of ~/.ssh/config and /etc/ssh/ssh_config that follows
// OpenSSH's readconf.c (Host, Match, Include; see config.go for why not
// github.com/kevinburke/ssh_config) and
// github.com/skeema/knownhosts for host keys with OpenSSH semantics.
//
// One TCP connection per host for the whole run; commands run on
// concurrent sessions; one SFTP session is reused for every transfer that
// the Perl server (below) does not make. Host
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
// # Persistent shells
//
// By default (ssh_persistent_shell) Run does not open a session per
// command: that costs the host an sshd child, the login shell and two `sh`
// per command. It writes shell code to a persistent `sh` instead (shell.go),
// one per session, in a pool of at most maxShells per connection. A shell
// runs one command at a time; a Run that finds none idle starts another,
// and when the pool is full it takes a session of its own, so that a long
// command never holds up the others.
//
// The protocol. A new shell ("exec sh" through the login shell) reads its
// boot code: it ignores SIGPIPE for itself, sets an EXIT trap that stops
// the command in flight and removes its FIFO directory, and answers, after
// a random token, "ok PID" when setsid and mkfifo exist, else "no". Each
// command gets a new random token TOK (16 bytes from crypto/rand, hex) and
// one line of code: a background subshell (a fork, no exec: the token is
// in no argv or environment) runs `setsid sh -c SCRIPT`, so the command has
// its own session and process group and $$ is its own, with stdin from
// /dev/null or a FIFO; it prints "TOKs PID" on stdout, waits, and prints
// "TOKe STATUS TAINT" on stdout and TOK on stderr. STATUS is the shell's
// 128+N for signal N; TAINT is 1 when a process of the group outlived the
// command. The controller scans both byte streams for the token (not line
// by line: output without a trailing newline, NUL bytes and any other
// command's token pass through) and hands the bytes around the records to
// the command's Output. Meanwhile the shell goes on reading: a command's
// input arrives as lines of `printf '...' >&3` (octal escapes for anything
// but plain text; printf is a builtin, so no input byte, such as the sudo
// password, appears in a process list) into the FIFO, whose writing end the
// shell closes at end of input. The next command's line starts by reaping
// the previous subshell.
//
// The Perl server (shellperl.go, ssh_shell_perl, default true). Where the
// host has perl, the boot code first execs `perl -e LOADER` with the
// server's source on file descriptor 3 (a here-document, so the process
// list shows only the loader), and the server answers "perl PID". It reads
// length-prefixed messages in place of shell code ("c TOK LEN STDIN" and
// the script, "i LEN" and input bytes, "e" for end of input) and answers
// with the same records, so the controller's scanner and every guarantee
// above stay the same. Each command is one fork, setpgrp (a process group
// of its own; not a session, which would need POSIX.pm and 10 ms per
// shell to load it) and one exec of `sh`, where the sh server forks a
// subshell and execs setsid and sh: it halves the host's CPU per command
// (BenchmarkRunLatency). Input goes to the command on a pipe, not a FIFO,
// so it needs neither mktemp nor mkfifo, in messages of 32 KiB that the
// server acknowledges ("TOKa") once written to the pipe, with at most 256
// KiB unacknowledged: sshd holds what its child has not read in a buffer
// that it grows by reallocating, and the first megabyte of input of a
// connection, sent at once, took 20 ms to reach `cat` against 6.6 ms so
// paced (5 ms for a second megabyte either way). A Perl server that ends before it
// answers (perl too old, or broken) makes the connection use sh for its
// later shells.
//
// The fork and the exec happen before the command arrives (unless
// ssh_shell_spares is false): the server keeps a spare, `sh -c '. /dev/stdin'` in a process group of its own,
// reading its script from a pipe. A command without input and shorter
// than 4,000 bytes is written to the spare as `exec </dev/null; SCRIPT`
// (one line, so line numbers stay the script's) and the pipe closed; the
// server forks the next spare while it runs. Any other command is forked
// and execed when it comes, as `sh -c SCRIPT`. A command then waits for no
// process to start: 1.28 ms → 0.88 ms per command in BenchmarkRunLatency,
// back to back, for 10% more CPU on the host (the spare's start and the
// command overlap on its cores). The server starts spares at a shell's
// second command, so that one that runs a single command pays for none,
// and trusts them only once a first one, given `exit 3`, exited 3: a host
// whose sh cannot source a pipe never runs a command through one. The script is then in no argv;
// the shell's messages name the file (`sh: 1: /dev/stdin: x: not found`
// where `sh -c` prints `sh: 1: x: not found`). An idle spare reads end of
// file and exits when the server goes, however it goes.
//
// The Perl server also answers file requests ("q TOK LEN" and the
// request): a stat, a read, a file's bytes for its SHA-256, a listing, a
// chmod, a chown, a sweep of temporary files and a put, with its own
// system calls and no fork, in the records of a command that printed its
// answer. A put of up to 64 KiB is one request; a larger one opens the
// file, streams its bytes as input messages, paced as a command's input
// is, then closes it: owner, mode, rename. No sftp-server starts for puts, and
// SFTP is left to get and to what the server cannot create. Conn is therefore a
// connectors.Native and a connectors.NativeGate, ready once a shell
// answered as perl (native.go); the builtins use it only for what runs as
// the login user, and whatever the server cannot answer exactly as the
// shell would goes to the shell's probe.
//
// Cancelling kills the group as the session path does (KillScript from a
// new session, since the shell may be blocked writing input the command
// does not read), then retires the shell: its stdin ends, so `sh` exits and
// its EXIT trap sends SIGTERM, then SIGKILL, to the group in flight. A
// closed connection does the same to every shell. A command whose group
// outlived it (TAINT), or whose input the shell cannot finish writing
// within stdinGrace, also retires its shell: Run returns when the command
// exits, not when the last holder of its stdout closes it (as a session
// does), and that process's later output must reach no other command.
//
// Sessions: idle shells, commands on sessions of their own, SFTP and a
// kill share sshd's MaxSessions (10 by default): a command that takes a
// session of its own first retires an idle shell, a retired shell's slot
// is reused only once the host has closed its session (or after
// shellCloseGrace), and a session refused with "open failed" (a slot not
// yet freed on the host) is asked for again for about a second. Close
// lets the idle shells read the end of their input and exit before it
// closes the connection, so that sshd reaps them.
//
// What falls back to a session per command: everything when
// ssh_persistent_shell is false or the probe said "no" or the shell died
// at start (probed once per connection; ShellMode tells which, and nothing
// is printed); PTY commands; a command when the pool is full or a new
// shell cannot be started; a command whose shell died before it started
// or whose FIFO could not be made (nothing of it ran). A shell that dies
// while its command runs fails that command with an error, as a lost
// session would.
//
// This package must not import Starlark or another connector; it is the
// only package that imports x/crypto/ssh and pkg/sftp.
package ssh
