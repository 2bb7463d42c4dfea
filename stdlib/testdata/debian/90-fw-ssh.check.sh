# Run as root after 90-fw-ssh.star.
ufw show added > /tmp/ufw-added
grep -qx "ufw allow 22/tcp comment 'ssh'" /tmp/ufw-added
grep -qx 'ufw allow from 10.0.0.0/8 to any port 5432 proto tcp' /tmp/ufw-added
grep -qx 'ufw limit OpenSSH' /tmp/ufw-added
grep -qx 'LOGLEVEL=medium' /etc/ufw/ufw.conf
grep -qx 'DEFAULT_FORWARD_POLICY="REJECT"' /etc/default/ufw
grep -qx 'ENABLED=no' /etc/ufw/ufw.conf
ssh-keygen -F 127.0.0.1 -f /root/.ssh/known_hosts >/dev/null
ssh-keygen -F localhost -f /root/.ssh/known_hosts >/dev/null
[ "$(cat /home/deploy/from-ssh.txt)" = from-ssh ]
[ "$(stat -c %U /home/deploy/from-ssh.txt)" = deploy ]
cmp /etc/os-release /home/deploy/os-release.copy
cmp /etc/os-release /srv/fwssh/os-release
[ "$(stat -c %U /srv/fwssh/os-release)" = root ]
cmp /home/deploy/from-ssh.txt /root/from-ssh.txt
