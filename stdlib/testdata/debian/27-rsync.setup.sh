# Runs as root in the container before the three runs of 27-rsync.star (sh -eu; see TestDebian): installs rsync
# from Debian's mirror, so that files.rsync finds it on both ends and runs the rsync program (25-server2 ran before,
# when the host had none: files.sync), and gives the destination what --delete and the excludes decide on.
if ! command -v rsync >/dev/null; then
	[ -e /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease ] || ls /var/lib/apt/lists/*_InRelease >/dev/null 2>&1 || apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsync >/dev/null
fi
mkdir -p /srv/rsync2/site/drafts
echo old >/srv/rsync2/site/stale.html
echo mine >/srv/rsync2/site/mine.swp
echo "mine too" >/srv/rsync2/site/drafts/keep
