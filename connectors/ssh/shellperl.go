package ssh

import (
	"strconv"
	"strings"
)

// The Perl command server: where the host has perl (perl-base is essential
// on Debian and Ubuntu), a persistent shell execs perlServer in place of
// reading shell code, and each command costs the host one fork and one
// exec of `sh -c` instead of a subshell, setsid and sh. The package
// documentation gives the protocol.

// perlLoader is perl's -e program: it reads the server from file
// descriptor 3 (a here-document of the boot code) and runs it, so that the
// process list shows only these few words.
const perlLoader = `open(F,"<&=3")||die"fd 3: $!";my$p=do{local$/;<F>};close F;eval$p;die$@if$@`

// perlServer is the server's source; BOOT stands for the boot token. It
// uses no module (POSIX alone would cost each shell 10 ms to load), so the
// command gets its own process group (setpgrp) rather than a session, and
// WNOHANG is spelled out (64 on Solaris, 1 elsewhere). It reads messages
// on stdin:
//
//	c TOK LEN STDIN\n SCRIPT   start `sh -c SCRIPT` (LEN bytes), input from a pipe if STDIN is 1, else /dev/null
//	i LEN\n BYTES              write BYTES to the command's input
//	e\n                        end of the command's input
//
// and answers with the sh server's records: "TOKs PID" once the command
// started, "TOKe STATUS TAINT" on stdout and TOK on stderr once it exited,
// or "TOKf" and TOK when it could not be started. A SIGCHLD interrupts the
// select; since perl runs its handlers between operations, one arriving
// just before the select is seen at its timeout, which doubles from 50 ms
// to a second while a command runs. At the end of its input, or on
// SIGHUP or SIGTERM, it stops the command in flight as the sh server does:
// SIGTERM, a second's grace, SIGKILL.
var perlServer = `
$SIG{PIPE} = 'IGNORE';
$SIG{CHLD} = sub {};
my $nohang = $^O eq 'solaris' ? 64 : 1;
my ($in, $pid, $tok, $w, $t) = ('', 0, '', undef, 0);
sub out { syswrite(STDOUT, $_[0]) }
sub stop {
	return unless $pid;
	kill 'TERM', -$pid, $pid;
	for (1 .. 20) { last unless kill 0, -$pid; select(undef, undef, undef, 0.05) }
	kill 'KILL', -$pid;
}
$SIG{HUP} = sub { stop(); exit 129 };
$SIG{TERM} = sub { stop(); exit 143 };
sub fail { out("$_[0]f\n"); syswrite(STDERR, $_[0]) }
sub start {
	my ($k, $script, $stdin) = @_;
	die "a command while one runs\n" if $pid;
	my $r;
	if ($stdin) { pipe($r, $w) or return fail($k) }
	else { open($r, '<', '/dev/null') or return fail($k) }
	my $p = fork;
	if (!defined $p) { close $r; $w = undef; return fail($k) }
	if ($p == 0) {
		$SIG{$_} = 'DEFAULT' for qw(PIPE CHLD HUP TERM);
		setpgrp(0, 0);
		open(STDIN, '<&', $r) or exit 126;
		exec { 'sh' } 'sh', '-c', $script;
		exit 127;
	}
	close $r;
	($pid, $tok, $t) = ($p, $k, 0.05);
	out("${k}s$p\n");
}
sub input {
	return unless $w;
	my $off = 0;
	while ($off < length $_[0]) {
		my $n = syswrite($w, $_[0], length($_[0]) - $off, $off);
		if (defined $n) { $off += $n; next }
		next if $! == 4;
		$w = undef;
		return;
	}
}
sub reap {
	return unless $pid;
	my $r = waitpid($pid, $nohang);
	return if $r == 0;
	my $s = $r < 0 ? 255 : $? & 127 ? 128 + ($? & 127) : $? >> 8;
	my $l = kill(0, -$pid) ? 1 : 0;
	($pid, $w) = (0, undef);
	out("${tok}e$s $l\n");
	syswrite(STDERR, $tok);
}
out("BOOTperl $$\n");
my $rin = '';
vec($rin, 0, 1) = 1;
for (;;) {
	my $n = select(my $rout = $rin, undef, undef, $pid ? $t : undef);
	$t = $t < 0.5 ? 2 * $t : 1 if $pid;
	reap();
	next unless $n > 0;
	my $got = sysread(STDIN, $in, 65536, length $in);
	if (!$got) {
		next if !defined $got && $! == 4;
		stop();
		exit 0;
	}
	while ((my $nl = index($in, "\n")) >= 0) {
		my @f = split / /, substr($in, 0, $nl);
		my $len = $f[0] eq 'c' ? $f[2] : $f[0] eq 'i' ? $f[1] : 0;
		last if length($in) < $nl + 1 + $len;
		my $body = substr($in, $nl + 1, $len);
		substr($in, 0, $nl + 1 + $len) = '';
		if ($f[0] eq 'c') { start($f[1], $body, $f[3]) }
		elsif ($f[0] eq 'i') { input($body) }
		elsif ($f[0] eq 'e') { $w = undef }
		else { die "bad message $f[0]\n" }
		reap();
	}
}
`

// perlBoot is the boot code's first part when the server is wanted: where
// perl is found, the shell execs it with the server (its boot token in
// place of BOOT) on file descriptor 3. The here-document ends at a line
// holding the token alone, which the server cannot hold.
func perlBoot(tok string) string {
	return "if command -v perl >/dev/null 2>&1; then exec perl -e '" + perlLoader + "' 3<<'" + tok + "'\n" +
		strings.ReplaceAll(perlServer, "BOOT", tok) + "\n" + tok + "\nfi\n"
}

// perlCommand is the message that starts script.
func perlCommand(tok, script string, stdin bool) []byte {
	in := "0"
	if stdin {
		in = "1"
	}
	b := make([]byte, 0, len(script)+64)
	b = append(b, "c "+tok+" "+strconv.Itoa(len(script))+" "+in+"\n"...)
	return append(b, script...)
}

// perlInput is the message that writes p to the command's input.
func perlInput(p []byte) []byte {
	b := make([]byte, 0, len(p)+16)
	b = append(b, "i "+strconv.Itoa(len(p))+"\n"...)
	return append(b, p...)
}
