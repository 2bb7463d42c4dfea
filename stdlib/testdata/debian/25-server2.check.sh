# Runs as root in the container after the real run of 25-server2.star (sh -eu).

# The locale: enabled in /etc/locale.gen and generated.
grep -qx 'en_GB.UTF-8 UTF-8' /etc/locale.gen
locale -a | grep -qx 'en_GB.utf8'
[ "$(LANG=en_GB.UTF-8 locale 2>&1 >/dev/null)" = "" ]

# The time zone.
[ "$(readlink /etc/localtime)" = /usr/share/zoneinfo/Europe/Berlin ]
[ "$(cat /etc/timezone)" = Europe/Berlin ]
[ "$(env -u TZ date -d '2024-07-01 12:00 UTC' +%Z)" = CEST ]

# The limits, once each, and pam_limits' view of them.
[ "$(grep -c '^\*	soft	nofile	4096$' /etc/security/limits.conf)" = 1 ]
[ "$(grep -c '^@deployers	hard	nproc	unlimited$' /etc/security/limits.conf)" = 1 ]
[ "$(su -s /bin/sh -c 'ulimit -Sn' carol)" = 4096 ]

# carol's keys: ~/.ssh/authorized_keys, and the file in /etc/ssh/keys/carol with exactly K2.
[ "$(stat -c '%a %U %G' /home/carol/.ssh)" = "700 carol carol" ]
[ "$(stat -c '%a %U %G' /home/carol/.ssh/authorized_keys)" = "600 carol carol" ]
[ "$(cat /home/carol/.ssh/authorized_keys)" = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKAIeg+JvR5oFP3N3tjWJ+jww1kPkXgAF7aivgOefVUq alice@laptop' ]
[ "$(stat -c '%a %U %G' /etc/ssh/keys/carol /etc/ssh/keys/carol/keys)" = "700 carol carol
600 carol carol" ]
[ "$(cat /etc/ssh/keys/carol/keys)" = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2cl/8YeVYZ0pHVcBhtcXIYikjHftjoAfG5+vWf9FIM ci@build' ]

# The script template ran once, as root, and left nothing behind.
[ "$(cat /var/lib/star-deploy-test/greeted)" = "hello from root on debian, args: a b" ]
[ ! -e /tmp/star-deploy-script-greet.sh.tmpl ]

# files.rsync: the content, and the directory itself.
[ "$(cat /srv/rsync/site/hello.txt)" = "hello from the fixture" ]
[ "$(cat /srv/rsync/copy/sync_fixture/hello.txt)" = "hello from the fixture" ]
[ ! -e /srv/rsync/copy/hello.txt ]

# chattr attributes.
lsattr -d /srv/flags/f | grep -q '^------dA'
lsattr -d /srv/flags | grep -q '^------d-'

# git.
[ "$(git config --global user.name)" = star-deploy ]
git config --system --get-all safe.directory | grep -qx /srv/git2/app.git
[ "$(git -C /srv/git2/app.git rev-parse --is-bare-repository)" = true ]
[ "$(git -C /srv/git2/main config --local user.email)" = deploy@star-deploy.invalid ]
[ "$(git -C /srv/git2/feature symbolic-ref --short HEAD)" = feature ]
[ "$(git -C /srv/git2/feature rev-parse HEAD)" = "$(git -C /srv/git2/app.git rev-parse main)" ]
! git -C /srv/git2/detached symbolic-ref -q HEAD
[ "$(git -C /srv/git2/detached rev-parse HEAD)" = "$(git -C /srv/git2/app.git rev-parse main)" ]
[ "$(git -C /srv/git2/main worktree list | wc -l)" = 2 ]
