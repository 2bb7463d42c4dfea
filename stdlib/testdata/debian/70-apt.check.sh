# Runs as root in the container after the real run of 70-apt.star (sh -eu).
want() {
	v=$(dpkg-query -W -f '${db:Status-Abbrev}${Version}' "$1" 2>/dev/null || true)
	[ "$v" = "ii $2" ] || { echo "$1: want installed $2, got '$v'"; exit 1; }
}
want star-deploy-hello 1.0
want star-deploy-libhello 1.0
want star-deploy-web 2.0
want star-deploy-old 1.1
want star-deploy-kept 1.1
want star-deploy-newdep 1.0
want star-deploy-pin 1.0
want star-deploy-tool 1.0
if dpkg-query -W -f '${db:Status-Abbrev}' star-deploy-extra 2>/dev/null | grep -q '^ii'; then
	echo "star-deploy-extra was installed despite no_recommends"; exit 1
fi
if dpkg-query -W -f '${db:Status-Abbrev}' star-deploy-orphan 2>/dev/null | grep -q '^ii'; then
	echo "star-deploy-orphan was not auto-removed"; exit 1
fi
# The downloaded .deb stays in the cache; its partial file does not.
ls /var/cache/star-deploy/deb/127.0.0.1_8070_star-deploy-web_2.0_all.deb
! ls /var/cache/star-deploy/deb/*.part 2>/dev/null
grep -qx 'star-deploy-kept 1.1' /usr/share/doc/star-deploy-kept/VERSION
# Nothing is left to upgrade.
! apt-get -s dist-upgrade | grep -E '^(Inst|Remv) '
