# Runs as root in the container after the real run of 20-server.star (sh -eu).

# The group and the accounts.
[ "$(getent group deployers | cut -d: -f3)" = 2100 ]
id alice
[ "$(id -nG alice | tr ' ' '\n' | sort | tr '\n' ' ')" = "alice deployers sudo " ]
[ "$(getent passwd alice | cut -d: -f5-7)" = "Alice Example:/home/alice:/bin/bash" ]
[ "$(getent shadow alice | cut -d: -f2)" = '$6$stardeploy$0czx5VZu8vLD/2WHZnAJaAnEbBa0ziP7c84GMOoVK/Mo8V.p/3B6cS7QrdODhp7ktktHtUBwIfZEhyN4cC.6n.' ]
[ "$(getent passwd svc-demo | cut -d: -f6-7)" = "/var/lib/svc-demo:/usr/sbin/nologin" ]
[ "$(id -u svc-demo)" -lt 1000 ]
[ ! -e /var/lib/svc-demo ]

# ~/.ssh and authorized_keys: modes, owner, content.
[ "$(stat -c '%a %U %G' /home/alice/.ssh)" = "700 alice alice" ]
[ "$(stat -c '%a %U %G' /home/alice/.ssh/authorized_keys)" = "600 alice alice" ]
[ "$(wc -l < /home/alice/.ssh/authorized_keys)" = 2 ]
grep -qxF 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKAIeg+JvR5oFP3N3tjWJ+jww1kPkXgAF7aivgOefVUq alice@laptop' /home/alice/.ssh/authorized_keys
grep -qxF 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2cl/8YeVYZ0pHVcBhtcXIYikjHftjoAfG5+vWf9FIM ci@build' /home/alice/.ssh/authorized_keys

# The persisted kernel parameter.
[ "$(cat /etc/sysctl.d/60-star-deploy-test.conf)" = "vm.swappiness = $(cat /proc/sys/vm/swappiness)" ]

# The cron jobs, each under its marker.
crontab -l -u alice > /tmp/alice.cron
[ "$(cat /tmp/alice.cron)" = "# star-deploy: backup
30 3 * * * /usr/local/bin/backup --all
# star-deploy: date >> /tmp/alice-ticks
*/15 * * * * date >> /tmp/alice-ticks" ]
crontab -l -u root | grep -qxF '@reboot /usr/local/bin/warm-cache'
command -v less

# The sysvinit service: running, as svc-demo, enabled in runlevels 2-5, answering.
service star-deploy-demo status
[ "$(ps -o user= -p "$(cat /run/star-deploy-demo.pid)")" = svc-demo ]
ls /etc/rc2.d/S??star-deploy-demo /etc/rc3.d/S??star-deploy-demo /etc/rc4.d/S??star-deploy-demo /etc/rc5.d/S??star-deploy-demo
[ "$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new("127.0.0.1:8022")->getline')" = star-deploy-demo ]

# The script ran once, as root, and left nothing behind.
[ "$(cat /var/lib/star-deploy-test/hello)" = "hello from root, args: /var/lib/star-deploy-test/hello a b" ]
[ ! -e /tmp/star-deploy-script-hello.sh ]
