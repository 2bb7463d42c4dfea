#!/bin/sh
# Installed by testdata/debian/50-mysql.star as /usr/local/bin/mysql and
# /usr/local/bin/mysqldump, ahead of the real clients on sudo's PATH: it
# appends the command line of itself and of every process above it (the
# sh -c of the operation, sudo, the SSH session's shell) to a log, then runs
# the real client. 50-mysql.check.sh reads the log: no password is in it.
log=/var/log/star-deploy-mysql-argv.log
p=$$
while [ "$p" -gt 1 ] && [ -r "/proc/$p/cmdline" ]; do
	{ tr '\0' ' ' <"/proc/$p/cmdline"; echo; } >>"$log"
	p=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$p/status")
done
echo -- >>"$log"
exec "/usr/bin/${0##*/}" "$@"
