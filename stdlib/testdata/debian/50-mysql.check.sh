# Run as root after 50-mysql.star: what the server holds, read with the client through the unix socket.
set -x
q() { mysql --batch --skip-column-names -e "$1"; }
# sh -e does not stop at a failing `! cmd`: never() does.
never() { if "$@"; then echo "should have failed: $*" >&2; exit 1; fi; }

test "$(q "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'appdb'")" = "utf8mb4 utf8mb4_unicode_ci"
test "$(q "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('appcopy', 'never-made')")" = 1

q "SHOW GRANTS FOR 'app'@'localhost'" > /tmp/grants-app
grep -qxF 'GRANT SELECT, INSERT, UPDATE, DELETE ON `appdb`.* TO `app`@`localhost`' /tmp/grants-app
q "SHOW GRANTS FOR 'reporter'@'%'" > /tmp/grants-reporter
grep -q '^GRANT RELOAD, PROCESS ON \*\.\* TO `reporter`@`%` IDENTIFIED BY PASSWORD ' /tmp/grants-reporter
grep -qxF 'GRANT SELECT ON `appcopy`.`items` TO `reporter`@`%` WITH GRANT OPTION' /tmp/grants-reporter

# app logs in with its password (given here through MYSQL_PWD, not the option file the operations write), and not
# with another.
test "$(MYSQL_PWD='app pw #"'\''\ $1' mysql --user=app --batch --skip-column-names -e 'SELECT CURRENT_USER()')" = "app@localhost"
never env MYSQL_PWD='app pw' mysql --user=app -e 'SELECT 1' 2>/dev/null
test "$(MYSQL_PWD=report-pw mysql --user=reporter --host=127.0.0.1 --batch --skip-column-names -e 'SELECT COUNT(*) FROM appcopy.items')" = 3

# The rows: the schema's two, app's third; the dump has them, and so does the copy it was loaded into.
test "$(q 'SELECT GROUP_CONCAT(name ORDER BY id) FROM appdb.items')" = "one,two,three"
test "$(q 'SELECT GROUP_CONCAT(name ORDER BY id) FROM appcopy.items')" = "one,two,three"
test "$(stat -c '%a %U' /var/backups/appdb.sql)" = "600 root"
grep -q '^INSERT INTO `items` VALUES' /var/backups/appdb.sql
grep -qF "(3,'three')" /var/backups/appdb.sql
never grep -q 'Dump completed on' /var/backups/appdb.sql

# No option file with a password is left behind, nor a temporary dump.
never grep -rlsF 'password=' /tmp
never ls /var/backups/.star-deploy-* 2>/dev/null

# The command lines the logger saw (each ends in a space, for the NUL after the last argument): the operations'
# clients (one with an option file) and the scripts and sudo above them, with no password in any of them.
log=/var/log/star-deploy-mysql-argv.log
grep -q '^/bin/sh /usr/local/bin/mysql --defaults-extra-file=/dev/fd/3 --user=app --batch --database=appdb ' $log
grep -q '^/bin/sh /usr/local/bin/mysqldump --skip-dump-date appdb ' $log
grep -q '^sh -c .*--defaults-extra-file=/dev/fd/3 --user=app' $log
never grep -q 'IDENTIFIED BY' $log
grep -q '^sudo ' $log
never grep -qF 'app pw' $log
never grep -qF 'report-pw' $log
