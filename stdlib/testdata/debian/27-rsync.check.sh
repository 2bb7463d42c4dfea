# Runs as root in the container after the real run of 27-rsync.star (sh -eu; see TestDebian).
s=/srv/rsync2/site
[ "$(cat $s/index.html)" = "<h1>deployed by rsync</h1>" ]
[ "$(cat $s/css/site.css)" = "h1{}" ]
[ "$(stat -c %U:%G $s/index.html $s/css)" = "www-data:www-data
www-data:www-data" ]
[ "$(readlink $s/home.html)" = index.html ]
# --delete removed stale.html; the excluded paths are left alone, and not copied.
[ ! -e $s/stale.html ]
[ "$(cat $s/mine.swp)" = mine ]
[ "$(cat $s/drafts/keep)" = "mine too" ]
[ ! -e $s/index.html.swp ]
[ ! -e $s/drafts/next.html ]
# The directory itself, without a trailing /.
[ "$(cat /srv/rsync2/copy/rsync_fixture/drafts/next.html)" = "not yet" ]
[ "$(readlink /srv/rsync2/copy/rsync_fixture/home.html)" = index.html ]
[ ! -e /srv/rsync2/copy/index.html ]
