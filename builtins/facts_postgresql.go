package builtins

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// The PostgreSQL facts ask the server through psql on the host. Their first
// argument is how psql connects: a libpq connection string
// ("host=127.0.0.1 port=5432 user=app dbname=postgres password=..."), or ""
// for psql's defaults (the local socket, as the user the fact runs as:
// sudo_user="postgres" on Debian). A password in it never reaches the
// host's command line: psql reads it from a 0600 PGPASSFILE that the
// command writes from its standard input and removes when it ends. The
// postgresql stdlib module builds the same commands (psqlPasswordPrefix).

// postgresqlFacts are the facts of the postgresql stdlib module.
func postgresqlFacts() []factDef {
	const conn = "The first argument is how psql connects: a libpq connection string (`\"host=127.0.0.1 port=5432 user=app dbname=postgres password=secret\"`), or `\"\"` for psql's defaults (the local socket, as the user the fact is read as: pass `sudo_user=\"postgres\"`). A password in it is handed to psql in a 0600 PGPASSFILE written from standard input, never on the command line."
	return []factDef{
		{Name: "postgresql_roles", Args: []string{"conninfo"}, Doc: "The roles of the PostgreSQL server, from `pg_roles`, as a dict from name to a struct with the booleans `.superuser`, `.inherit`, `.createrole`, `.createdb`, `.login`, `.replication`, `.bypassrls`, and `.connection_limit` (an int, -1 for none) and `.valid_until` (a string, or None). Empty when psql is not installed. " + conn,
			Example: `roles = fact("postgresql_roles", "", sudo_user = "postgres")
if "app" in roles and roles["app"].superuser:
    print("app is a superuser")`, read: readPostgresqlRoles},
		{Name: "postgresql_databases", Args: []string{"conninfo"}, Doc: "The databases of the PostgreSQL server, from `pg_database`, as a dict from name to a struct with `.owner`, `.encoding` (`UTF8`), `.collate`, `.ctype`, `.tablespace`, the booleans `.is_template` and `.allow_connections`, and `.connection_limit` (an int, -1 for none). Empty when psql is not installed. " + conn,
			Example: `dbs = fact("postgresql_databases", "", sudo_user = "postgres")
print(dbs["postgres"].encoding)`, read: readPostgresqlDatabases},
		{Name: "postgresql_role_password", Args: []string{"conninfo", "role", "password"}, Doc: "Whether password is the password of role: True when it matches the verifier the server stores in `pg_authid` (SCRAM-SHA-256 or MD5; star-deploy reads the verifier and checks the password against it: the password itself is never sent to the host), False when it does not or the role has no password, None when the role does not exist, psql is not installed or the verifier cannot be read (reading `pg_authid` takes a superuser). A password that is not ASCII is compared as it is given, without SASLprep's normalisation: one whose NFKC form differs reads as False. " + conn,
			Example: `if fact("postgresql_role_password", "", "app", "s3cret", sudo_user = "postgres") == False:
    print("app's password differs")`, read: readPostgresqlRolePassword},
		{Name: "postgresql_query", Args: []string{"conninfo", "query"}, Doc: "The rows a read-only SQL query returns, as a list of lists of strings (as psql prints the values; NULL is `\"\"`); an empty list when there are none or psql is not installed. The query goes to psql on standard input. Like every fact it is cached until an operation changes the host. " + conn,
			Example: `rows = fact("postgresql_query", "dbname=app", "SELECT 1 FROM pg_tables WHERE tablename = 'notes'", sudo_user = "postgres")
if not rows:
    print("no notes table yet")`, read: readPostgresqlQuery},
	}
}

// psqlPasswordPrefix is the start of a script that runs psql with a
// password: it reads the first line of standard input (a .pgpass line) into
// a 0600 temporary file, opens it on file descriptor 3 and removes it at
// once, so that psql reads the deleted file through /dev/fd/3 and nothing
// is left even when the script is killed (SIGKILL) later; where /dev/fd is
// missing, PGPASSFILE names the file, removed when the script ends.
// stdlib/postgresql.star has the same text (TestPsqlPasswordPrefix).
const psqlPasswordPrefix = `umask 077; f=$(mktemp) || exit 1; trap '[ -z "$f" ] || rm -f "$f"' EXIT; trap 'exit 1' HUP INT TERM; IFS= read -r l; printf '%s\n' "$l" >"$f"; exec 3<"$f"; if [ -r /dev/fd/3 ]; then rm -f "$f"; f=; export PGPASSFILE=/dev/fd/3; else export PGPASSFILE="$f"; fi; `

// psqlFactArgs are the options of the psql that facts run: no psqlrc, no
// prompt for a password, unaligned rows without headers, fields separated
// by NUL and rows by the record separator (0x1e), and a failing statement
// fails the command.
const psqlFactArgs = `psql -X -q -w -A -t -z -R "$(printf '\036')" -v ON_ERROR_STOP=1`

// psqlCommand returns the script and standard input that run query (with
// psql variables vars, `:'name'` in the query) through psql connected by
// conninfo.
func psqlCommand(conninfo, query string, vars ...string) (script, stdin string, err error) {
	kv, err := parseConninfo(conninfo)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	password, hasPassword := "", false
	var rest []string
	for _, p := range kv {
		if p[0] == "password" {
			password, hasPassword = p[1], true
			continue
		}
		rest = append(rest, p[0]+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p[1])+"'")
	}
	if hasPassword {
		if strings.ContainsAny(password, "\n\r") {
			return "", "", fmt.Errorf("the password in conninfo has a line break, which a password file cannot hold")
		}
		b.WriteString(psqlPasswordPrefix)
		stdin = "*:*:*:*:" + strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(password) + "\n"
	}
	b.WriteString(psqlFactArgs)
	for i := 0; i+1 < len(vars); i += 2 {
		b.WriteString(" -v " + connectors.Quote(vars[i]+"="+vars[i+1]))
	}
	if len(rest) > 0 {
		b.WriteString(" -d " + connectors.Quote(strings.Join(rest, " ")))
	}
	b.WriteString(" -f -")
	return b.String(), stdin + query + "\n", nil
}

// parseConninfo splits a libpq connection string of key=value pairs
// (values single-quoted or not, with backslash escapes) into its pairs.
func parseConninfo(s string) ([][2]string, error) {
	var out [][2]string
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++
		}
	}
	for {
		skip()
		if i == len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		key := s[start:i]
		skip()
		if i == len(s) || s[i] != '=' || key == "" {
			return nil, fmt.Errorf("conninfo: want key=value pairs like \"host=127.0.0.1 user=app\", got %q", s)
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, fmt.Errorf("conninfo: the value of %s has no closing quote", key)
			}
			i++
		} else {
			for ; i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
		}
		out = append(out, [2]string{key, v.String()})
	}
}

// psqlRows runs query and returns its rows; installed is false (and
// there are no rows) when psql is not installed on the host. A failing
// psql returns its result with an *connectors.ExitError.
func (h *Host) psqlRows(ctx context.Context, ctl Control, conninfo, query string, vars ...string) (rows [][]string, res connectors.Result, installed bool, err error) {
	script, stdin, err := psqlCommand(conninfo, query, vars...)
	if err != nil {
		return nil, res, false, err
	}
	if res, err = h.run(ctx, script, ctl, stdin); err != nil {
		return nil, res, false, err
	}
	if err := whole(res); err != nil {
		return nil, res, true, err
	}
	if res.ExitCode != 0 {
		// Without psql (under --dry, before the package is installed) the
		// server has no state to read; sudo_user="postgres" fails too then,
		// as there is no postgres user yet: ask as the connecting user.
		unpriv := ctl
		unpriv.Sudo, unpriv.SudoUser, unpriv.SuUser, unpriv.Doas, unpriv.DoasUser = false, "", "", false, ""
		if w, err := h.run(ctx, "command -v psql", unpriv, ""); err == nil && w.ExitCode != 0 {
			return nil, res, false, nil
		}
		return nil, res, true, &connectors.ExitError{Target: h.Name, Script: "psql", Result: res}
	}
	return parsePsqlRows(res.Stdout), res, true, nil
}

// parsePsqlRows splits the output of psqlFactArgs into rows of fields.
func parsePsqlRows(out []byte) [][]string {
	if len(out) == 0 {
		return nil
	}
	out = bytes.TrimSuffix(out, []byte("\n"))
	var rows [][]string
	for _, rec := range strings.Split(string(out), "\x1e") {
		rows = append(rows, strings.Split(rec, "\x00"))
	}
	return rows
}

const postgresqlRolesQuery = `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, COALESCE(rolvaliduntil::text, '') FROM pg_catalog.pg_roles ORDER BY rolname`

var readPostgresqlRoles = readPsqlCatalog(postgresqlRolesQuery, parsePostgresqlRoles)

func parsePostgresqlRoles(rows [][]string) (*starlark.Dict, error) {
	return psqlCatalog(rows, "pg_roles", 10, "postgresql_role", func(r []string) starlark.StringDict {
		fields := starlark.StringDict{"valid_until": optString(r[9])}
		for i, k := range []string{"superuser", "inherit", "createrole", "createdb", "login", "replication", "bypassrls"} {
			fields[k] = starlark.Bool(r[1+i] == "t")
		}
		return fields
	})
}

const postgresqlDatabasesQuery = `SELECT d.datname, pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, COALESCE(t.spcname, ''), d.datistemplate, d.datallowconn, d.datconnlimit FROM pg_catalog.pg_database d LEFT JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace ORDER BY d.datname`

var readPostgresqlDatabases = readPsqlCatalog(postgresqlDatabasesQuery, parsePostgresqlDatabases)

func parsePostgresqlDatabases(rows [][]string) (*starlark.Dict, error) {
	return psqlCatalog(rows, "pg_database", 9, "postgresql_database", func(r []string) starlark.StringDict {
		return starlark.StringDict{
			"owner":             starlark.String(r[1]),
			"encoding":          starlark.String(r[2]),
			"collate":           starlark.String(r[3]),
			"ctype":             starlark.String(r[4]),
			"tablespace":        starlark.String(r[5]),
			"is_template":       starlark.Bool(r[6] == "t"),
			"allow_connections": starlark.Bool(r[7] == "t"),
		}
	})
}

// readPsqlCatalog reads a catalog fact: the rows of query (run with the
// connection of args[0]), read by parse.
func readPsqlCatalog(query string, parse func([][]string) (*starlark.Dict, error)) readFunc {
	return func(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
		rows, _, _, err := h.psqlRows(ctx, ctl, args[0], query)
		if err != nil {
			return nil, err
		}
		return parse(rows)
	}
}

// psqlCatalog reads the rows of a catalog query whose rows have width
// fields, the object's name first and its connection limit ninth, into a
// dict from name to a struct named name of the fields that fields reads
// and connection_limit.
func psqlCatalog(rows [][]string, catalog string, width int, name string, fields func(r []string) starlark.StringDict) (*starlark.Dict, error) {
	d := starlark.NewDict(len(rows))
	for _, r := range rows {
		if len(r) != width {
			return nil, fmt.Errorf("psql printed a row of %d fields for %s, want %d: %q", len(r), catalog, width, r)
		}
		limit, err := strconv.Atoi(r[8])
		if err != nil {
			return nil, fmt.Errorf("%s: connection limit %q of %s: %w", catalog, r[8], r[0], err)
		}
		f := fields(r)
		f["connection_limit"] = starlark.MakeInt(limit)
		if err := d.SetKey(starlark.String(r[0]), newStruct(name, f)); err != nil {
			return nil, err
		}
	}
	return d, nil
}

const postgresqlPasswordQuery = `SELECT COALESCE(rolpassword, '') FROM pg_catalog.pg_authid WHERE rolname = :'role'`

func readPostgresqlRolePassword(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	rows, res, _, err := h.psqlRows(ctx, ctl, args[0], postgresqlPasswordQuery, "role", args[1])
	if err != nil && bytes.Contains(res.Stderr, []byte("permission denied")) {
		return starlark.None, nil // no superuser
	}
	if err != nil || len(rows) == 0 {
		return starlark.None, err
	}
	return starlark.Bool(passwordMatches(rows[0][0], args[1], args[2])), nil
}

// passwordMatches reports whether password is the password of role whose
// pg_authid.rolpassword is stored: a SCRAM-SHA-256 verifier, an MD5 hash,
// or (servers before 10) the password itself. No stored password matches
// nothing.
func passwordMatches(stored, role, password string) bool {
	switch {
	case stored == "":
		return false
	case strings.HasPrefix(stored, "SCRAM-SHA-256$"):
		return scramMatches(stored, password)
	case strings.HasPrefix(stored, "md5") && len(stored) == 35:
		sum := md5.Sum([]byte(password + role))
		return subtle.ConstantTimeCompare([]byte(stored[3:]), []byte(hex.EncodeToString(sum[:]))) == 1
	default:
		return subtle.ConstantTimeCompare([]byte(stored), []byte(password)) == 1
	}
}

// scramMatches checks password against a verifier
// SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY (RFC 5802, RFC 7677):
// StoredKey is SHA-256(HMAC(SaltedPassword, "Client Key")).
func scramMatches(verifier, password string) bool {
	parts := strings.Split(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	if len(parts) != 2 {
		return false
	}
	iterSalt := strings.SplitN(parts[0], ":", 2)
	keys := strings.SplitN(parts[1], ":", 2)
	if len(iterSalt) != 2 || len(keys) != 2 {
		return false
	}
	iter, err := strconv.Atoi(iterSalt[0])
	if err != nil || iter < 1 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(iterSalt[1])
	stored, err2 := base64.StdEncoding.DecodeString(keys[0])
	if err1 != nil || err2 != nil {
		return false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	sum := sha256.Sum256(mac.Sum(nil))
	return subtle.ConstantTimeCompare(sum[:], stored) == 1
}

func readPostgresqlQuery(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	rows, _, _, err := h.psqlRows(ctx, ctl, args[0], args[1])
	if err != nil {
		return nil, err
	}
	out := make([]starlark.Value, 0, len(rows))
	for _, r := range rows {
		row := make([]starlark.Value, len(r))
		for i, f := range r {
			row[i] = starlark.String(f)
		}
		out = append(out, starlark.NewList(row))
	}
	return starlark.NewList(out), nil
}
