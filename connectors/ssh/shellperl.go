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
// WNOHANG is spelled out (64 on Solaris, 1 elsewhere), as are the flags
// of a new file (O_WRONLY|O_CREAT|O_EXCL, 0301 on Linux where the ELF
// header of perl's own binary names x86, PowerPC, s390, ARM, AArch64,
// RISC-V or LoongArch; elsewhere from Fcntl, whose loading costs a
// millisecond). It reads messages on stdin:
//
//	c TOK LEN STDIN\n SCRIPT   start SCRIPT (LEN bytes) on a spare or as `sh -c SCRIPT`, input from a pipe if STDIN is 1, else /dev/null
//	i LEN\n BYTES              write BYTES to the command's input, or to the file a request "open" began; answered "TOKa"
//	                           (the command's token, or the file's ACK) while the command runs or the file is open
//	e\n                        end of the command's input
//	q TOK LEN\n REQUEST         answer a file request in-process (native.go)
//
// and answers with the sh server's records: "TOKs PID" once the command
// started, "TOKe STATUS TAINT" on stdout and TOK on stderr once it exited,
// or "TOKf" and TOK when it could not be started. A SIGCHLD writes a byte
// to a pipe that the select watches, so an exit that lands just before the
// select still wakes it. Perl runs the handler between operations, so one
// that lands inside the select operation itself, before the system call,
// is seen at the timeout, which doubles from 50 ms to a second while a
// command runs. Without the pipe, about 1 command in 1,000 run back to
// back waited those 50 ms, and with spares, whose commands end sooner,
// over 1 in 100. A spare (see the package documentation) that dies unused
// is reaped. At the end of its input, or on SIGHUP or SIGTERM, the server
// stops the command in flight as the sh server does (SIGTERM, a second's
// grace, SIGKILL) and kills the spare. Its writes to stdout and stderr go
// on after an EINTR, since a child's exit may interrupt one.
//
// A request is fields separated by NUL bytes, an operation first; the
// server answers it as a command that printed its answer and exited: the
// answer's bytes (which a status other than 0 may have too), "TOKe STATUS
// 0" on stdout, TOK on stderr, and no "TOKs" record, since no process was
// started. STATUS 0 is an answer, 1 a file
// that is not there (ENOENT or ENOTDIR), 2 a file larger than asked, 9
// anything the shell must answer instead. The operations, with the system
// calls of the server itself; only the digest of a file larger than MAX
// forks (sha256sum, in the server's process group, which a cancel kills):
//
//	stat PATH [MAX]     lstat: TYPE, MODE, OWNER, GROUP, SIZE, a link's TARGET and, with MAX, a regular file's HASH, NUL-separated:
//	                    "b" and its content when it has at most MAX bytes, else "h" and sha256sum's (shasum's) hex digest
//	read MAX PATH       stat, then the content of a regular file of at most MAX bytes
//	sweep DIR PRE N ID AGE  unlink DIR's regular files named PRE, N hex digits and '-', but not PRE ID '-', older than AGE seconds
//	chmod MODE PATH     chmod (MODE in decimal)
//	chown USER GROUP PATH  chown by names, "" keeping one
//	put TMP DST MODE BYTES  write BYTES (the rest of the request) to the new file TMP (O_EXCL, 0600), give it DST's owner where allowed, chmod, rename over DST
//	open TMP ACK        create TMP as put does; the input messages that follow write to it, each answered "ACKa"
//	close DST MODE      end the file that open began as put does: 9 and what failed ("rename: Is a directory") as the
//	                    answer. The server removes the file when it quits first
//	tree MAX DIR        TYPE and PATH, NUL-separated, of everything under DIR (not through links); 1 when DIR is not a directory
var perlServer = `
$SIG{PIPE} = 'IGNORE';
pipe(my $cr, my $cw) or die "pipe: $!";
my $woke = 0;
$SIG{CHLD} = sub { syswrite($cw, 'x') unless $woke++ };
my $nohang = $^O eq 'solaris' ? 64 : 1;
my ($in, $pid, $tok, $w, $t, $ptmp, $perr, $pack) = ('', 0, '', undef, 0);
sub wr {
	my ($fh, $b) = @_;
	my $off = 0;
	while ($off < length $b) {
		my $n = syswrite($fh, $b, length($b) - $off, $off);
		if (defined $n) { $off += $n; next }
		return unless $! == 4;
	}
}
sub out { wr(\*STDOUT, $_[0]) }
sub err { wr(\*STDERR, $_[0]) }
sub stop {
	return unless $pid;
	kill 'TERM', -$pid, $pid;
	for (1 .. 20) { last unless kill 0, -$pid; select(undef, undef, undef, 0.05) }
	kill 'KILL', -$pid;
}
sub quit { stop(); unspare(); unlink $ptmp if defined $ptmp; exit $_[0] }
$SIG{HUP} = sub { quit(129) };
$SIG{TERM} = sub { quit(143) };
sub fail { out("$_[0]f\n"); err($_[0]) }
sub spawn {
	my ($r, @argv) = @_;
	my $p = fork;
	return $p unless defined $p && $p == 0;
	$SIG{$_} = 'DEFAULT' for qw(PIPE CHLD HUP TERM);
	setpgrp(0, 0);
	open(STDIN, '<&', $r) or exit 126;
	exec { 'sh' } 'sh', @argv;
	exit 127;
}
my ($spares, $spid, $sw, $probe, $runs, $pre) = (0, 0, undef, 0, 0, 'exec </dev/null; ');
sub spare {
	return if $spid;
	pipe(my $r, my $x) or return;
	my $p = spawn($r, '-c', '. /dev/stdin', 'sh') or return;
	($spid, $sw) = ($p, $x);
	return $p;
}
sub unspare {
	for ($spid, $probe) { next unless $_; kill 'KILL', -$_, $_; waitpid($_, 0); $_ = 0 }
	$sw = undef;
}
sub start {
	my ($k, $script, $stdin) = @_;
	die "a command while one runs\n" if $pid;
	if ($spid && !$stdin && length($script) < 4000) {
		my $n = syswrite($sw, "$pre$script");
		if (defined $n && $n == length($pre) + length $script) {
			($pid, $tok, $t, $spid, $sw) = ($spid, $k, 0.05, 0, undef);
			out("${k}s$pid\n");
			spare();
			return;
		}
		unspare();
	}
	my $r;
	if ($stdin) { pipe($r, $w) or return fail($k) }
	else { open($r, '<', '/dev/null') or return fail($k) }
	my $p = spawn($r, '-c', $script);
	if (!defined $p) { close $r; $w = undef; return fail($k) }
	close $r;
	($pid, $tok, $t) = ($p, $k, 0.05);
	out("${k}s$p\n");
	if ($spares) { spare() }
	elsif (++$runs == 2 && $wantspares && -e '/dev/stdin' && spare()) {
		syswrite($sw, "${pre}exit 3");
		($probe, $spid, $sw) = ($spid, 0, undef);
	}
}
sub input {
	return unless $w;
	my $off = 0;
	while ($off < length $_[0]) {
		my $n = syswrite($w, $_[0], length($_[0]) - $off, $off);
		if (defined $n) { $off += $n; next }
		next if $! == 4;
		($w, $perr) = (undef, "write: $!");
		return;
	}
}
sub ack {
	my $k = defined $ptmp ? $pack : $pid ? $tok : undef;
	out("${k}a\n") if defined $k;
}
sub reap {
	if ($spid && waitpid($spid, $nohang) > 0) { ($spid, $sw) = (0, undef) }
	if ($probe && waitpid($probe, $nohang) > 0) {
		$probe = 0;
		$spares = $? == 3 << 8;
		spare() if $spares;
	}
	return unless $pid;
	my $r = waitpid($pid, $nohang);
	return if $r == 0;
	my $s = $r < 0 ? 255 : $? & 127 ? 128 + ($? & 127) : $? >> 8;
	my $l = kill(0, -$pid) ? 1 : 0;
	($pid, $w) = (0, undef);
	out("${tok}e$s $l\n");
	err($tok);
}
sub kind { my $m = $_[0] & 0170000; $m == 0100000 ? 'file' : $m == 0040000 ? 'directory' : $m == 0120000 ? 'link' : 'other' }
sub gone { $! == 2 || $! == 20 ? 1 : 9 }
my (%un, %gn);
sub qstat {
	my ($p, $hl) = @_;
	my @s = lstat $p or return gone();
	my $u = $un{$s[4]} //= getpwuid($s[4]);
	my $g = $gn{$s[5]} //= getgrgid($s[5]);
	return 9 unless defined $u && defined $g;
	my $k = kind($s[2]);
	my $l = '';
	if ($k eq 'link') { $l = readlink $p; return 9 unless defined $l }
	my $h = '';
	if (defined $hl && $k eq 'file') {
		my ($r, $b) = $s[7] > $hl ? 2 : slurp($p, $hl);
		if ($r == 0) { $h = "b$b" }
		elsif ($r == 2) { $h = hashfile($p); return 9 unless defined $h }
		else { return 9 }
	}
	return (0, join("\0", $k, $s[2] & 07777, $u, $g, $s[7], $l, $h));
}
sub hashfile {
	for my $c (['sha256sum', '--', $_[0]], ['shasum', '-a', '256', '--', $_[0]]) {
		open(my $f, '-|', @$c) or next;
		my $l = <$f>;
		next unless close($f) && defined $l && $l =~ /^([0-9a-f]{64})[ \t]/;
		return "h$1";
	}
	return undef;
}
sub slurp {
	my ($p, $max) = @_;
	open(my $f, '<', $p) or return 9;
	binmode $f;
	my $b = '';
	while (length($b) <= $max) {
		my $n = sysread($f, $b, 65536, length $b);
		return 9 unless defined $n;
		last unless $n;
	}
	return length($b) > $max ? 2 : (0, $b);
}
sub qread {
	my ($max, $p) = @_;
	my @s = stat $p or return gone();
	return 9 unless kind($s[2]) eq 'file' && $s[7] <= $max;
	my ($r, $b) = slurp($p, $max);
	return $r ? 9 : (0, $b);
}
sub qsweep {
	my ($dir, $pre, $n, $id, $age) = @_;
	opendir(my $d, $dir) or return 0;
	my $c = time - $age;
	for my $e (readdir $d) {
		next unless $e =~ /^\Q$pre\E[0-9a-f]{$n}-/ && index($e, "$pre$id-") != 0;
		my @s = lstat "$dir/$e";
		unlink "$dir/$e" if @s && kind($s[2]) eq 'file' && $s[9] < $c;
	}
	closedir $d;
	return 0;
}
sub qchmod { my ($m, $p) = @_; chmod($m, $p) ? 0 : 9 }
sub qchown {
	my ($u, $g, $p) = @_;
	my ($uid, $gid) = (-1, -1);
	if (length $u) { $uid = getpwnam($u); return 9 unless defined $uid }
	if (length $g) { $gid = getgrnam($g); return 9 unless defined $gid }
	return chown($uid, $gid, $p) ? 0 : 9;
}
sub qtree {
	my ($max, $dir) = @_;
	my @s = stat $dir or return gone();
	return 1 unless kind($s[2]) eq 'directory';
	return 9 unless -x _;
	my ($b, $size, @todo) = ('', 0, '');
	while (@todo) {
		my $rel = shift @todo;
		opendir(my $d, length $rel ? "$dir/$rel" : $dir) or return 9;
		for my $e (readdir $d) {
			next if $e eq '.' || $e eq '..';
			my $r = length $rel ? "$rel/$e" : $e;
			return 9 if index($r, "\n") >= 0;
			my @l = lstat "$dir/$r" or return 9;
			my $k = kind($l[2]);
			$size += length($k) + length($r) + 4;
			return 9 if $size >= $max;
			$b .= "$k\0$r\0";
			push @todo, $r if $k eq 'directory';
		}
		closedir $d;
	}
	return (0, $b);
}
my $excl;
sub excl {
	my ($f, $h) = (undef, '');
	read($f, $h, 20) if $^O eq 'linux' && open($f, '<', '/proc/self/exe');
	if (length $h == 20) {
		my $m = unpack(substr($h, 5, 1) eq "\2" ? 'n' : 'v', substr($h, 18, 2));
		return 0301 if grep { $m == $_ } 3, 20, 21, 22, 40, 62, 183, 243, 258;
	}
	require Fcntl;
	return Fcntl::O_WRONLY() | Fcntl::O_CREAT() | Fcntl::O_EXCL();
}
sub qopen {
	my ($tmp, $ack) = @_;
	$excl //= excl();
	sysopen(my $f, $tmp, $excl, 0600) or return gone();
	($w, $ptmp, $perr, $pack) = ($f, $tmp, undef, $ack);
	return 0;
}
sub qclose {
	my ($dst, $mode) = @_;
	return 9 unless defined $ptmp;
	my ($f, $tmp, $e) = ($w, $ptmp, $perr);
	($w, $ptmp, $perr) = (undef, undef, undef);
	$e = "close: $!" if !defined $e && !close($f);
	if (!defined $e) {
		my @o = lstat $dst;
		chown($o[4], $o[5], $tmp) if @o && kind($o[2]) eq 'file';
		if (!chmod($mode, $tmp)) { $e = "chmod: $!" }
		elsif (!rename($tmp, $dst)) { $e = "rename: $!" }
		else { return 0 }
	}
	unlink $tmp;
	return (9, $e);
}
sub qput {
	my ($tmp, $dst, $mode, $data) = @_;
	my $s = qopen($tmp);
	return $s if $s;
	input($data);
	return qclose($dst, $mode);
}
my %ops = (put => \&qput, open => \&qopen, close => \&qclose, stat => \&qstat, read => \&qread, sweep => \&qsweep, chmod => \&qchmod, chown => \&qchown, tree => \&qtree);
sub query {
	my ($k, $req) = @_;
	# TOK "-": a request whose answer nobody waits for (a sweep)
	my ($op, @a) = split /\0/, $req, $req =~ /^put\0/ ? 5 : -1;
	my ($s, $b) = $ops{$op} ? $ops{$op}->(@a) : 9;
	return if $k eq '-';
	out($b) if defined $b;
	out("${k}e$s 0\n");
	err($k);
}
out("BOOTperl $$\n");
my $rin = '';
vec($rin, 0, 1) = 1;
vec($rin, fileno($cr), 1) = 1;
for (;;) {
	my $n = select(my $rout = $rin, undef, undef, $pid ? $t : undef);
	$t = $t < 0.5 ? 2 * $t : 1 if $pid;
	if ($n > 0 && vec($rout, fileno($cr), 1)) { sysread($cr, my $x, 64); $woke = 0 }
	reap();
	next unless $n > 0 && vec($rout, 0, 1);
	my $got = sysread(STDIN, $in, 65536, length $in);
	if (!$got) {
		next if !defined $got && $! == 4;
		quit(0);
	}
	while ((my $nl = index($in, "\n")) >= 0) {
		my @f = split / /, substr($in, 0, $nl);
		my $len = $f[0] eq 'c' || $f[0] eq 'q' ? $f[2] : $f[0] eq 'i' ? $f[1] : 0;
		last if length($in) < $nl + 1 + $len;
		my $body = substr($in, $nl + 1, $len);
		substr($in, 0, $nl + 1 + $len) = '';
		if ($f[0] eq 'c') { start($f[1], $body, $f[3]) }
		elsif ($f[0] eq 'i') { input($body); ack() }
		elsif ($f[0] eq 'e') { $w = undef }
		elsif ($f[0] eq 'q') { query($f[1], $body) }
		else { die "bad message $f[0]\n" }
		reap();
	}
}
`

// perlBoot is the boot code when the server is wanted: where perl is
// found, the shell execs it with the server (its boot token in place of
// BOOT, after a line that sets $wantspares from ssh_shell_spares) on file
// descriptor 3, else it runs orElse (the sh server's boot).
// The here-document ends at a line holding the token alone, which the
// server cannot hold. It is one compound command ending the boot code, so
// the shell has read all of it before it execs perl: nothing the shell
// left unread reaches the server as a message, however long the server
// and however the shell's reads fall.
func perlBoot(tok, orElse string, spares bool) string {
	want := "my $wantspares = 0;\n"
	if spares {
		want = "my $wantspares = 1;\n"
	}
	return "if command -v perl >/dev/null 2>&1; then exec perl -e '" + perlLoader + "' 3<<'" + tok + "'\n" + want +
		strings.ReplaceAll(perlServer, "BOOT", tok) + "\n" + tok + "\nelse\n" + orElse + "fi\n"
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

// perlQuery is the message that asks the server the request fields.
func perlQuery(tok string, fields ...string) []byte {
	req := strings.Join(fields, "\x00")
	return []byte("q " + tok + " " + strconv.Itoa(len(req)) + "\n" + req)
}

// perlInput is the message that writes p to the command's input.
func perlInput(p []byte) []byte {
	b := make([]byte, 0, len(p)+16)
	b = append(b, "i "+strconv.Itoa(len(p))+"\n"...)
	return append(b, p...)
}
