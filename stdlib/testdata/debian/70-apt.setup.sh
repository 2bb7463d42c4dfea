# Runs as root in the container before the three runs of 70-apt.star (sh -eu; see TestDebian). It makes the test's
# own packages with dpkg-deb, nothing from the internet:
#   /srv/star-deploy-apt/debs  star-deploy-hello 1.0, for apt.deb from a path; it depends on star-deploy-libhello
#   /srv/star-deploy-apt/www   star-deploy-web 2.0, for apt.deb from a URL, served on 127.0.0.1:8070 in the container
#   /srv/star-deploy-apt/repo  a flat apt repository (file:, trusted) with the newer versions and the dependencies
# and installs the old versions that the scenario then upgrades or downgrades:
#   star-deploy-old 1.0   repo has 1.1: apt.upgrade upgrades it
#   star-deploy-kept 1.0  repo has 1.1, which depends on star-deploy-newdep: apt-get upgrade keeps it back, apt.dist_upgrade upgrades it
#   star-deploy-pin 2.0   repo has 1.0 only: apt.packages("star-deploy-pin=1.0", allow_downgrades = True) downgrades it
#   star-deploy-orphan 1.0, marked as installed automatically and needed by nothing: apt.upgrade(auto_remove = True) removes it
d=/srv/star-deploy-apt
mkdir -p $d/debs $d/www $d/repo $d/old

# mkdeb DIR NAME VERSION [CONTROL-LINE...]
mkdeb() {
	dir=$1 name=$2 version=$3
	shift 3
	root=$(mktemp -d)
	mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$name"
	{
		echo "Package: $name"
		echo "Version: $version"
		echo "Architecture: all"
		echo "Maintainer: star-deploy tests <test@example.invalid>"
		for l in "$@"; do echo "$l"; done
		echo "Description: a test package of star-deploy's 70-apt scenario"
	} >"$root/DEBIAN/control"
	echo "$name $version" >"$root/usr/share/doc/$name/VERSION"
	dpkg-deb --root-owner-group -b "$root" "$dir/${name}_${version}_all.deb" >/dev/null
	rm -rf "$root"
}

mkdeb $d/debs star-deploy-hello 1.0 "Depends: star-deploy-libhello (>= 1.0)"
mkdeb $d/www star-deploy-web 2.0
mkdeb $d/repo star-deploy-libhello 1.0
mkdeb $d/repo star-deploy-old 1.1
mkdeb $d/repo star-deploy-kept 1.1 "Depends: star-deploy-newdep"
mkdeb $d/repo star-deploy-newdep 1.0
mkdeb $d/repo star-deploy-pin 1.0
mkdeb $d/repo star-deploy-tool 1.0 "Recommends: star-deploy-extra"
mkdeb $d/repo star-deploy-extra 1.0
mkdeb $d/old star-deploy-old 1.0
mkdeb $d/old star-deploy-kept 1.0
mkdeb $d/old star-deploy-pin 2.0
mkdeb $d/old star-deploy-orphan 1.0
dpkg -i $d/old/*.deb >/dev/null
apt-mark auto star-deploy-orphan >/dev/null

# The repository's index, as dpkg-scanpackages would write it, and a Release file with its checksum.
cd $d/repo
for f in *.deb; do
	dpkg-deb -f "$f"
	echo "Filename: ./$f"
	echo "Size: $(stat -c %s "$f")"
	echo "SHA256: $(sha256sum "$f" | cut -d' ' -f1)"
	echo
done >Packages
printf 'Date: %s\nSHA256:\n %s %s Packages\n' "$(date -Ru)" "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)" >Release
echo "deb [trusted=yes] file:$d/repo ./" >/etc/apt/sources.list.d/star-deploy-local.list
# Refresh this repository's list alone: the mirror is slow, and the scenario needs nothing from it.
apt-get update -qq -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/star-deploy-local.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0

# A web server for the URL, on the container's loopback only; it stops by itself after an hour.
cat >$d/serve.pl <<'PERL'
use strict;
use IO::Socket::INET;
alarm 3600;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 8070, Listen => 5, ReuseAddr => 1) or die "listen: $!";
while (my $c = $s->accept) {
	my $req = <$c> // "";
	while (my $h = <$c>) { last if $h =~ /^\r?$/ }
	my ($path) = $req =~ m{^GET (/[A-Za-z0-9._+~-]+) };
	my $f = defined $path ? "/srv/star-deploy-apt/www$path" : "";
	if ($f ne "" && -f $f && open(my $fh, "<:raw", $f)) {
		local $/;
		my $body = <$fh>;
		print $c "HTTP/1.0 200 OK\r\nContent-Type: application/vnd.debian.binary-package\r\nContent-Length: " . length($body) . "\r\n\r\n" . $body;
	} else {
		print $c "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	}
	close $c;
}
PERL
setsid perl $d/serve.pl </dev/null >/var/log/star-deploy-http.log 2>&1 &
# Wait until it listens.
i=0
until perl -MIO::Socket::INET -e 'IO::Socket::INET->new("127.0.0.1:8070") or exit 1' 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 50 ] || { echo "the web server did not start:"; cat /var/log/star-deploy-http.log; exit 1; }
	sleep 0.1
done
