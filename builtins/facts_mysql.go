package builtins

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// mysqlConnArgs are the connection arguments every mysql fact takes last,
// as the mysql operations do; "" (or leaving them out) means the client's
// default.
var mysqlConnArgs = []string{"mysql_user?", "mysql_password?", "mysql_host?", "mysql_port?"}

const mysqlConnDoc = " The connection arguments may be left out (or given as \"\"): by default the `mysql` client connects as the user the fact runs as, through the local socket (root with `sudo=True` on Debian's MariaDB). " +
	"mysql_password never reaches a command line or a file: it goes on standard input, and the command hands it to the client as an option file through a pipe (`--defaults-extra-file=/dev/fd/3`). " +
	"None when there is no server to ask: no `mysql` client on the host, or the server cannot be reached (error 2002 or 2003; under `--dry`, an earlier operation may install or start it)."

// mysqlFacts are the facts of the mysql module: what the server holds,
// read with the mysql client on the host.
func mysqlFacts() []factDef {
	return []factDef{
		{Name: "mysql_databases", Args: mysqlConnArgs,
			Doc: "The databases of the MySQL or MariaDB server, from information_schema, as a dict from name to a struct with `.character_set`, `.collation_name` and `.tables` (how many tables and views it holds)." + mysqlConnDoc,
			Example: `dbs = fact("mysql_databases", sudo = True)
if dbs != None and "app" in dbs:
    print(dbs["app"].character_set)`, read: readMysqlDatabases},
		{Name: "mysql_users", Args: mysqlConnArgs,
			Doc: "The accounts of the MySQL or MariaDB server (`mysql.user`) as a dict from `user@host` to a struct with `.user`, `.host`, `.privileges` (the global privileges, as the columns name them without `_priv`: `Select`, `Reload`, ..., sorted), `.plugin` (the authentication plugin, or None) and `.is_role`. Password hashes are not kept." + mysqlConnDoc,
			Example: `users = fact("mysql_users", sudo = True) or {}
if "app@localhost" not in users:
    print("no app account yet")`, read: readMysqlUsers},
		{Name: "mysql_grants", Args: append([]string{"user", "user_hostname?"}, mysqlConnArgs...),
			Doc: "The privileges of the account user@user_hostname (user_hostname defaults to `localhost`), from `SHOW GRANTS`, as a dict from `database.table` (`*.*`, `app.*`, `app.items`, names unquoted) to the sorted list of privileges granted on it (`SELECT`, `INSERT`, ...; `ALL PRIVILEGES` is `ALL`; `WITH GRANT OPTION` adds `GRANT OPTION`; column privileges such as `SELECT (id)` are listed as written). Grants of roles and proxies are left out. None when the account does not exist (error 1141)." + mysqlConnDoc,
			Example: `g = fact("mysql_grants", "app", "localhost", sudo = True) or {}
print(g.get("app.*", []))`, read: readMysqlGrants},
		{Name: "mysql_query", Args: append([]string{"query", "database?"}, mysqlConnArgs...),
			Doc: "The rows that query (one SQL statement) returns, run in database when it is given, as a list of dicts from column name to value (a string, or None for NULL). The query goes on standard input, not the command line, so it may hold a secret. This is the check behind `mysql.sql(unless_sql = ...)`." + mysqlConnDoc,
			Example: `rows = fact("mysql_query", "SELECT COUNT(*) AS n FROM items", "app", sudo = True)
if rows != None:
    print(rows[0]["n"])`, read: readMysqlQuery},
		{Name: "mysql_dump_sha256", Args: append([]string{"database?"}, mysqlConnArgs...),
			Doc: "The SHA-256 (hex) of what `mysqldump --skip-dump-date` prints for database (all databases when it is \"\" or left out): what `mysql.dump` compares with its file, so that an unchanged database is not dumped again. It costs one dump." + mysqlConnDoc,
			Example: `if fact("mysql_dump_sha256", "app", sudo = True) != fact("sha256", "/var/backups/app.sql", sudo = True):
    print("the dump is stale")`, read: readMysqlDumpSHA256},
	}
}

// mysqlConn holds the connection arguments of a mysql fact or operation.
type mysqlConn struct {
	user, password, host, port string
}

// mysqlConnOf reads the connection arguments from the end of args.
func mysqlConnOf(args []string) mysqlConn {
	a := args[len(args)-len(mysqlConnArgs):]
	return mysqlConn{user: a[0], password: a[1], host: a[2], port: a[3]}
}

// mysqlOptionValue writes s as a double-quoted value of a MySQL option
// file, in which a backslash escapes the quote, itself and the control
// characters.
func mysqlOptionValue(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s) + `"`
}

// mysqlWithPassword wraps a client command (exe and its options, then
// args) for a password: it reads the first line of standard input (the
// password line of an option file), then hands the client a [client]
// option file holding it through a pipe on fd 3
// (--defaults-extra-file=/dev/fd/3), so that the password is in no file,
// argv or environment. The client gets the rest of standard input, or
// what a redirection after the wrapper gives (mysql.restore's <FILE): the
// inner group takes fd 0 as the outer one has it. mysql.star builds the
// same wrapper for the operations.
func mysqlWithPassword(exe, args string) string {
	return `IFS= read -r l && { { printf '[client]\n%s\n' "$l" | { ` + exe + ` --defaults-extra-file=/dev/fd/3` + args + ` 3<&0 0<&4 4<&-; }; } 4<&0; }`
}

// command renders the client exe (mysql, mysqldump) with the connection
// options of c and args (shell words, already quoted) into a script, and
// returns the standard input to run it with: the password line, if any,
// then input.
func (c mysqlConn) command(exe, args, input string) (script, stdin string) {
	var b strings.Builder
	for _, o := range []struct{ name, v string }{{"user", c.user}, {"host", c.host}, {"port", c.port}} {
		if o.v != "" {
			b.WriteString(" --" + o.name + "=" + connectors.Quote(o.v))
		}
	}
	if args != "" {
		b.WriteString(" " + args)
	}
	if c.password == "" {
		return exe + b.String(), input
	}
	return mysqlWithPassword(exe, b.String()), "password=" + mysqlOptionValue(c.password) + "\n" + input
}

// mysqlErrorCode finds the client error number in stderr ("ERROR 2002
// (HY000): ...", "mysqldump: Got error: 2002: ..."), or 0.
func mysqlErrorCode(stderr string) int {
	m := mysqlErrorRE().FindStringSubmatch(stderr)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var mysqlErrorRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)(?:^ERROR |Got error: )(\d+)`) })

// mysqlUnreachable reports whether a client command's result says there is
// no server to ask: no client (exit 127) or no connection (2002, 2003).
func mysqlUnreachable(res connectors.Result) bool {
	if res.ExitCode == 127 {
		return true
	}
	code := mysqlErrorCode(string(res.Stderr))
	return res.ExitCode != 0 && (code == 2002 || code == 2003)
}

// A mysqlStatement is what a fact asks the server: the SQL, whether the
// output has a header line, and whether the SQL may hold a secret (then it
// goes on standard input; else on the command line, where it says what
// the command is for).
type mysqlStatement struct {
	sql            string
	header, secret bool
}

// mysqlQuery runs st with `mysql --batch` and returns its output. It
// returns ok=false when there is no server to ask, and the client's error
// number when the statement failed and allowed names it.
func mysqlQuery(ctx context.Context, h *Host, ctl Control, c mysqlConn, st mysqlStatement, allowed ...int) (out string, ok bool, code int, err error) {
	args, input := "--batch", st.sql+"\n"
	if !st.header {
		args += " --skip-column-names"
	}
	if !st.secret {
		args, input = args+" --execute="+connectors.Quote(st.sql), ""
	}
	script, stdin := c.command("mysql", args, input)
	res, err := h.run(ctx, script, ctl, stdin)
	if err != nil {
		return "", false, 0, err
	}
	if err := whole(res); err != nil {
		return "", false, 0, err
	}
	if mysqlUnreachable(res) {
		return "", false, 0, nil
	}
	if res.ExitCode != 0 {
		if code := mysqlErrorCode(string(res.Stderr)); code != 0 && slices.Contains(allowed, code) {
			return "", true, code, nil
		}
		return "", false, 0, fmt.Errorf("mysql: %s", connectors.LastLine(res.Stderr))
	}
	return string(res.Stdout), true, 0, nil
}

// mysqlUnescape undoes the escapes of the client's batch output.
var mysqlUnescape = strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n", `\0`, "\x00")

// parseMysqlBatch parses the batch output of a query with its header line
// into one map per row, from column name to value; NULL is "NULL".
func parseMysqlBatch(out string) []map[string]string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 {
		return nil
	}
	cols := strings.Split(lines[0], "\t")
	var rows []map[string]string
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		if len(f) != len(cols) {
			continue
		}
		row := make(map[string]string, len(cols))
		for i, c := range cols {
			row[c] = mysqlUnescape.Replace(f[i])
		}
		rows = append(rows, row)
	}
	return rows
}

const mysqlDatabasesQuery = "SELECT s.SCHEMA_NAME AS name, s.DEFAULT_CHARACTER_SET_NAME AS character_set, s.DEFAULT_COLLATION_NAME AS collation_name, " +
	"(SELECT COUNT(*) FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = s.SCHEMA_NAME) AS tables FROM information_schema.SCHEMATA s ORDER BY s.SCHEMA_NAME"

// mysqlDatabase is one row of the mysql_databases fact.
type mysqlDatabase struct {
	Charset, Collation string
	Tables             int
}

func parseMysqlDatabases(out string) map[string]mysqlDatabase {
	dbs := map[string]mysqlDatabase{}
	for _, r := range parseMysqlBatch(out) {
		n, _ := strconv.Atoi(r["tables"])
		dbs[r["name"]] = mysqlDatabase{Charset: r["character_set"], Collation: r["collation_name"], Tables: n}
	}
	return dbs
}

func readMysqlDatabases(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	out, ok, _, err := mysqlQuery(ctx, h, ctl, mysqlConnOf(args), mysqlStatement{sql: mysqlDatabasesQuery, header: true})
	if err != nil || !ok {
		return starlark.None, err
	}
	return structDict(parseMysqlDatabases(out), func(db mysqlDatabase) starlark.Value {
		return newStruct("mysql_database", starlark.StringDict{
			"character_set":  starlark.String(db.Charset),
			"collation_name": starlark.String(db.Collation),
			"tables":         starlark.MakeInt(db.Tables),
		})
	}), nil
}

// mysqlUser is one account of the mysql_users fact.
type mysqlUser struct {
	User, Host, Plugin string
	Privileges         []string
	IsRole             bool
}

// parseMysqlUsers parses `SELECT * FROM mysql.user`, whose columns differ
// between MySQL and MariaDB versions; it keeps no password hash.
func parseMysqlUsers(out string) map[string]mysqlUser {
	users := map[string]mysqlUser{}
	for _, r := range parseMysqlBatch(out) {
		u := mysqlUser{User: r["User"], Host: r["Host"], Plugin: r["plugin"], IsRole: r["is_role"] == "Y", Privileges: []string{}}
		for col, v := range r {
			if p, ok := strings.CutSuffix(col, "_priv"); ok && v == "Y" {
				u.Privileges = append(u.Privileges, p)
			}
		}
		slices.Sort(u.Privileges)
		users[u.User+"@"+u.Host] = u
	}
	return users
}

func readMysqlUsers(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	out, ok, _, err := mysqlQuery(ctx, h, ctl, mysqlConnOf(args), mysqlStatement{sql: "SELECT * FROM mysql.user", header: true})
	if err != nil || !ok {
		return starlark.None, err
	}
	return structDict(parseMysqlUsers(out), func(u mysqlUser) starlark.Value {
		var plugin starlark.Value = starlark.None
		if u.Plugin != "" && u.Plugin != "NULL" {
			plugin = starlark.String(u.Plugin)
		}
		return newStruct("mysql_user", starlark.StringDict{
			"user":       starlark.String(u.User),
			"host":       starlark.String(u.Host),
			"privileges": strList(u.Privileges),
			"plugin":     plugin,
			"is_role":    starlark.Bool(u.IsRole),
		})
	}), nil
}

// mysqlString writes s as a MySQL string literal (quotes and backslashes
// escaped, as the default SQL mode reads them).
func mysqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// parseMysqlGrants parses the lines of SHOW GRANTS into database.table ->
// the set of privileges on it.
func parseMysqlGrants(out string) map[string][]string {
	grants := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		line = mysqlUnescape.Replace(strings.TrimSpace(line))
		rest, ok := strings.CutPrefix(line, "GRANT ")
		if !ok {
			continue
		}
		privs, rest, ok := cutOutside(rest, " ON ")
		if !ok {
			continue // a role granted: GRANT `r` TO `u`@`h`
		}
		object, rest, ok := cutOutside(rest, " TO ")
		if !ok || strings.HasPrefix(privs, "PROXY") {
			continue
		}
		key := mysqlObject(object)
		set := grants[key]
		for _, p := range splitOutside(privs, ',') {
			p = strings.TrimSpace(p)
			if p == "ALL PRIVILEGES" {
				p = "ALL"
			}
			if p != "" && !slices.Contains(set, p) {
				set = append(set, p)
			}
		}
		// After the account: IDENTIFIED ..., REQUIRE ..., WITH GRANT OPTION
		// and resource limits; a password hash holds no space.
		if _, after, ok := cutOutside(rest, " WITH "); ok && strings.Contains(" "+after+" ", " GRANT OPTION ") && !slices.Contains(set, "GRANT OPTION") {
			set = append(set, "GRANT OPTION")
		}
		slices.Sort(set)
		grants[key] = set
	}
	return grants
}

// mysqlObject turns `db`.`table` (or *.*, `db`.*) into db.table.
func mysqlObject(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '`' && quoted && i+1 < len(s) && s[i+1] == '`':
			b.WriteByte('`')
			i++
		case c == '`':
			quoted = !quoted
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// cutOutside is strings.Cut for a sep outside quotes (`, ', ") and
// parentheses.
func cutOutside(s, sep string) (before, after string, found bool) {
	var quote byte
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '`' || c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && strings.HasPrefix(s[i:], sep):
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// splitOutside splits s at each sep outside quotes and parentheses.
func splitOutside(s string, sep byte) []string {
	var out []string
	for {
		before, after, ok := cutOutside(s, string(sep))
		out = append(out, before)
		if !ok {
			return out
		}
		s = after
	}
}

func readMysqlGrants(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	user, hostname := args[0], args[1]
	if hostname == "" {
		hostname = "localhost"
	}
	out, ok, code, err := mysqlQuery(ctx, h, ctl, mysqlConnOf(args), mysqlStatement{sql: "SHOW GRANTS FOR " + mysqlString(user) + "@" + mysqlString(hostname)}, 1141)
	if err != nil || !ok || code == 1141 {
		return starlark.None, err
	}
	return structDict(parseMysqlGrants(out), func(privs []string) starlark.Value { return strList(privs) }), nil
}

// mysqlDumpFailed is what the dump probe prints on stderr when mysqldump
// fails: the pipe into sha256sum hides its exit status.
const mysqlDumpFailed = "star-deploy: mysqldump failed with exit status "

func readMysqlDumpSHA256(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	what := "--all-databases"
	if args[0] != "" {
		what = connectors.Quote(args[0])
	}
	script, stdin := mysqlConnOf(args).command("mysqldump", "--skip-dump-date "+what, "")
	script = "{ " + script + " || echo \"" + mysqlDumpFailed + "$?\" >&2; } | { sha256sum 2>/dev/null || shasum -a 256; } | cut -d' ' -f1"
	res, err := h.run(ctx, script, ctl, stdin)
	if err != nil {
		return nil, err
	}
	stderr := string(res.Stderr)
	if i := strings.Index(stderr, mysqlDumpFailed); i >= 0 {
		if strings.HasPrefix(stderr[i+len(mysqlDumpFailed):], "127") {
			return starlark.None, nil
		}
		if code := mysqlErrorCode(stderr); code == 2002 || code == 2003 {
			return starlark.None, nil
		}
		return nil, fmt.Errorf("mysqldump: %s", strings.TrimSpace(stderr[:i]))
	}
	if res.ExitCode != 0 {
		return nil, &connectors.ExitError{Target: h.Name, Script: "mysqldump | sha256sum", Result: res}
	}
	return starlark.String(strings.TrimSpace(string(res.Stdout))), nil
}

func readMysqlQuery(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	c := mysqlConnOf(args)
	sql := args[0]
	if args[1] != "" {
		sql = "USE " + mysqlIdent(args[1]) + ";\n" + sql
	}
	out, ok, _, err := mysqlQuery(ctx, h, ctl, c, mysqlStatement{sql: sql, header: true, secret: true})
	if err != nil || !ok {
		return starlark.None, err
	}
	var rows []starlark.Value
	for _, r := range parseMysqlBatch(out) {
		rows = append(rows, structDict(r, func(v string) starlark.Value {
			if v == "NULL" {
				return starlark.None
			}
			return starlark.String(v)
		}))
	}
	return starlark.NewList(rows), nil
}

// mysqlIdent writes s as a MySQL identifier in backticks.
func mysqlIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
