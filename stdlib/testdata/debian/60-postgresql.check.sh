# Run as root after 60-postgresql.star.
pg() { su postgres -s /bin/sh -c "psql -X -v ON_ERROR_STOP=1 $1"; }

pg "-c '\\du app'" > /tmp/du
grep -q 'Create DB' /tmp/du
! grep -q Superuser /tmp/du
pg "-c '\\du reporting'" | grep -q 'Cannot login'
[ -z "$(pg "-At -c \"SELECT 1 FROM pg_roles WHERE rolname = 'ghost'\"")" ]

pg "-l" > /tmp/l
grep -E '^ *appdb +\| app +\| UTF8 ' /tmp/l
grep -E '^ *appdb_copy +\| app ' /tmp/l

# app logs in over TCP with its password, and only with it.
[ "$(PGPASSWORD="app-pw: it's 'quoted'" psql -X -w -h 127.0.0.1 -U app -d appdb -At -c 'SELECT string_agg(body, $$,$$ ORDER BY id) FROM notes')" = "first,second" ]
! PGPASSWORD=wrong psql -X -w -h 127.0.0.1 -U app -d appdb -c 'SELECT 1' 2>/dev/null

# The dump, and the copy restored from it.
grep -q 'CREATE TABLE public.notes' /var/lib/postgresql/appdb.sql
[ "$(pg "-At -d appdb_copy -c 'SELECT count(*) FROM notes'")" = 2 ]
[ "$(pg "-At -d appdb_copy -c \"SELECT tableowner FROM pg_tables WHERE tablename = 'notes'\"")" = app ]

# No password file is left behind.
! ls /tmp/tmp.* 2>/dev/null
