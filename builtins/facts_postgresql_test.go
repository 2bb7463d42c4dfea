package builtins

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/connectors/local"
)

// The captures under testdata/facts/postgresql_* come from PostgreSQL 15
// on Debian 12 (testdata/facts/README.md).

func readCapture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "facts", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePostgresqlRoles(t *testing.T) {
	d, err := parsePostgresqlRoles(parsePsqlRows(readCapture(t, "postgresql_roles.txt")))
	if err != nil {
		t.Fatal(err)
	}
	get := func(role, attr string) string {
		v, found, _ := d.Get(starlark.String(role))
		if !found {
			t.Fatalf("no role %s in %s", role, d)
		}
		a, err := v.(interface {
			Attr(string) (starlark.Value, error)
		}).Attr(attr)
		if err != nil {
			t.Fatal(err)
		}
		return a.String()
	}
	for _, c := range []struct{ role, attr, want string }{
		{"postgres", "superuser", "True"},
		{"postgres", "replication", "True"},
		{"app", "superuser", "False"},
		{"app", "login", "True"},
		{"app", "createdb", "True"},
		{"app", "inherit", "True"},
		{"app", "connection_limit", "5"},
		{"app", "valid_until", "None"},
		{"odd|name", "login", "False"},
		{"odd|name", "inherit", "False"},
		{"odd|name", "valid_until", `"2030-01-01 00:00:00+00"`},
		{"legacy", "connection_limit", "-1"},
	} {
		if got := get(c.role, c.attr); got != c.want {
			t.Errorf("%s.%s = %s, want %s", c.role, c.attr, got, c.want)
		}
	}
	if _, found, _ := d.Get(starlark.String("pg_monitor")); !found {
		t.Errorf("the predefined roles are missing: %s", d)
	}
}

func TestParsePostgresqlDatabases(t *testing.T) {
	d, err := parsePostgresqlDatabases(parsePsqlRows(readCapture(t, "postgresql_databases.txt")))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range d.Keys() {
		names = append(names, string(k.(starlark.String)))
	}
	if want := []string{"appdb", "postgres", "template0", "template1"}; !slices.Equal(names, want) {
		t.Fatalf("databases %q, want %q", names, want)
	}
	v, _, _ := d.Get(starlark.String("appdb"))
	s := v.String()
	for _, want := range []string{`owner = "app"`, `encoding = "SQL_ASCII"`, `collate = "C"`, `ctype = "C"`, `tablespace = "pg_default"`, "is_template = False", "allow_connections = True", "connection_limit = -1"} {
		if !strings.Contains(s, want) {
			t.Errorf("appdb = %s, lacks %s", s, want)
		}
	}
	v, _, _ = d.Get(starlark.String("template0"))
	if s := v.String(); !strings.Contains(s, "is_template = True") || !strings.Contains(s, "allow_connections = False") || !strings.Contains(s, `encoding = "UTF8"`) {
		t.Errorf("template0 = %s", s)
	}
}

func TestParsePsqlRowsShapes(t *testing.T) {
	for _, c := range []struct {
		out  string
		want [][]string
	}{
		{"", nil},
		{"\n", [][]string{{""}}},
		{"a\x00b\n", [][]string{{"a", "b"}}},
		{"a\x00\x1e\x00b\n", [][]string{{"a", ""}, {"", "b"}}},
		{"line\none\x00x\n", [][]string{{"line\none", "x"}}}, // a newline in a value
	} {
		if got := parsePsqlRows([]byte(c.out)); !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("parsePsqlRows(%q) = %q, want %q", c.out, got, c.want)
		}
	}
}

func TestPasswordMatches(t *testing.T) {
	stored := func(name string) string {
		rows := parsePsqlRows(readCapture(t, name))
		if len(rows) == 0 {
			return ""
		}
		return rows[0][0]
	}
	app, legacy, none := stored("postgresql_authid_app.txt"), stored("postgresql_authid_legacy.txt"), stored("postgresql_authid_none.txt")
	if !strings.HasPrefix(app, "SCRAM-SHA-256$4096:") || !strings.HasPrefix(legacy, "md5") || none != "" {
		t.Fatalf("unexpected captures: %q %q %q", app, legacy, none)
	}
	for _, c := range []struct {
		stored, role, password string
		want                   bool
	}{
		{app, "app", "secret", true},
		{app, "app", "Secret", false},
		{app, "app", "", false},
		{legacy, "legacy", "old", true},
		{legacy, "other", "old", false}, // MD5 salts with the role name
		{legacy, "legacy", "new", false},
		{none, "odd|name", "", false},
		{"SCRAM-SHA-256$x", "app", "secret", false},
		{"plain", "r", "plain", true},
	} {
		if got := passwordMatches(c.stored, c.role, c.password); got != c.want {
			t.Errorf("passwordMatches(%.30q, %q, %q) = %v", c.stored, c.role, c.password, got)
		}
	}
}

func TestParseConninfo(t *testing.T) {
	got, err := parseConninfo(`host=127.0.0.1  port = 5433 user='a b' password='it\'s \\ x' dbname=d\ b`)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"host", "127.0.0.1"}, {"port", "5433"}, {"user", "a b"}, {"password", `it's \ x`}, {"dbname", "d b"}}
	if !slices.Equal(got, want) {
		t.Errorf("parseConninfo = %q, want %q", got, want)
	}
	for _, bad := range []string{"postgresql://u@h/d", "host", "user='x"} {
		if _, err := parseConninfo(bad); err == nil {
			t.Errorf("parseConninfo(%q) succeeded", bad)
		}
	}
}

// The password goes into the script's standard input, never into the
// script (which is the command line on the host).
func TestPsqlCommandKeepsThePasswordOffTheCommandLine(t *testing.T) {
	script, stdin, err := psqlCommand(`user=app password='pa:ss\\w0rd \'x' host=127.0.0.1`, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(script, "pa:ss") || strings.Contains(script, "w0rd") {
		t.Errorf("the script holds the password: %s", script)
	}
	if want := "*:*:*:*:pa\\:ss\\\\w0rd 'x\nSELECT 1\n"; stdin != want {
		t.Errorf("stdin = %q, want %q", stdin, want)
	}
	if !strings.HasPrefix(script, psqlPasswordPrefix) || !strings.HasSuffix(script, " -d "+connectors.Quote("user='app' host='127.0.0.1'")+" -f -") {
		t.Errorf("script = %s", script)
	}
	if _, _, err := psqlCommand("password='a\nb'", "SELECT 1"); err == nil {
		t.Errorf("a password with a line break was accepted")
	}
	script, stdin, _ = psqlCommand("", "SELECT 1")
	if strings.Contains(script, "PGPASSFILE") || stdin != "SELECT 1\n" {
		t.Errorf("without a password: %s with stdin %q", script, stdin)
	}
}

// TestPsqlPasswordFileOnARealShell runs the script of a fact with a password
// on this machine with a stand-in psql that records what it was given:
// the password reaches psql only through PGPASSFILE, a 0600 file already
// removed while psql runs (it reads it through /dev/fd/3), and the query
// follows on standard input.
func TestPsqlPasswordFileOnARealShell(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	stub := `#!/bin/sh
printf '%s\n' "$*" > "$LOG.argv"
printf '%s\n' "$PGPASSFILE" > "$LOG.path"
stat -L -c %a "$PGPASSFILE" > "$LOG.mode"
ls -A "$TMPDIR" > "$LOG.tmp"
cat "$PGPASSFILE" > "$LOG.pass"
cat > "$LOG.stdin"
printf 'app\000t\000t\000f\000t\000t\000f\000f\000-1\000\036odd\000f\000f\000f\000f\000f\000f\000f\0005\0002030-01-01 00:00:00+00\n'
`
	if err := os.WriteFile(filepath.Join(bin, "psql"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	conn, err := local.NewFactory().Open(t.Context(), connectors.Target{Scheme: "local", Name: "@local"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := &Host{Name: "@local", Conn: conn}
	log := filepath.Join(dir, "log")
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	ctl := Control{Env: map[string]string{"PATH": bin + ":/usr/bin:/bin", "LOG": log, "TMPDIR": tmp}}
	v, err := readPostgresqlRoles(t.Context(), h, ctl, []string{"user=app password='s3:cr\\\\et' host=127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if s := v.String(); !strings.Contains(s, `"odd": postgresql_role(`) || !strings.Contains(s, "connection_limit = 5") {
		t.Errorf("roles = %s", s)
	}
	read := func(ext string) string {
		b, err := os.ReadFile(log + "." + ext)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if argv := read("argv"); strings.Contains(argv, "s3") || !strings.Contains(argv, "-d user='app' host='127.0.0.1' -f -") {
		t.Errorf("psql's arguments: %s", argv)
	}
	if got := read("pass"); got != "*:*:*:*:s3\\:cr\\\\et\n" {
		t.Errorf("the password file holds %q", got)
	}
	if got := read("mode"); got != "600\n" {
		t.Errorf("the password file's mode is %s", got)
	}
	if p := strings.TrimSpace(read("path")); p != "/dev/fd/3" {
		t.Errorf("PGPASSFILE = %s, want /dev/fd/3", p)
	}
	if got := read("tmp"); got != "" {
		t.Errorf("TMPDIR holds %q while psql runs, want nothing", got)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("TMPDIR holds %d files after the command, want none", len(left))
	}
	if got := read("stdin"); got != postgresqlRolesQuery+"\n" {
		t.Errorf("psql's standard input: %q", got)
	}
}

// The postgresql stdlib module builds its commands with the same prefix.
func TestPsqlPasswordPrefix(t *testing.T) {
	b, err := os.ReadFile("../stdlib/postgresql.star")
	if err != nil {
		t.Fatal(err)
	}
	if want := "_PASSWORD_PREFIX = " + starlark.String(psqlPasswordPrefix).String() + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("stdlib/postgresql.star does not hold\n%s", want)
	}
}

// Without psql (--dry before postgresql is installed, where sudo -u postgres
// fails too) the facts are empty; with psql, a failing one fails the fact.
func TestPostgresqlFactsWithoutPsql(t *testing.T) {
	for _, installed := range []bool{false, true} {
		c := fake.New("db")
		var stdins []string
		c.OnFunc("umask 077", func(_ context.Context, cmd connectors.Command) (connectors.Result, error) {
			b, _ := io.ReadAll(cmd.Stdin)
			stdins = append(stdins, string(b))
			return connectors.Result{ExitCode: 1, Stderr: []byte("sudo: unknown user postgres\n")}, nil
		})
		code := 1
		if installed {
			code = 0
		}
		c.On("command -v psql", connectors.Result{ExitCode: code})
		h := &Host{Name: "db", Conn: c}
		v, err := readPostgresqlRoles(t.Context(), h, Control{}, []string{"password=pw"})
		if installed {
			if err == nil || !strings.Contains(err.Error(), "exit") {
				t.Errorf("with psql installed, a failing psql gave %v, %v", v, err)
			}
		} else if err != nil || v.(*starlark.Dict).Len() != 0 {
			t.Errorf("without psql: %v, %v", v, err)
		}
		if len(stdins) != 1 || !strings.HasPrefix(stdins[0], "*:*:*:*:pw\n") {
			t.Errorf("psql's stdin: %q", stdins)
		}
		for _, cmd := range c.Commands() {
			if strings.Contains(cmd, "pw") {
				t.Errorf("a command holds the password: %s", cmd)
			}
		}
	}
}

// A role that is no superuser cannot read pg_authid: the password of a role
// reads as None, not as a failure.
func TestPostgresqlRolePasswordWithoutSuperuser(t *testing.T) {
	c := fake.New("db")
	c.On("psql", connectors.Result{ExitCode: 3, Stderr: readCapture(t, "postgresql_authid_denied.txt")})
	h := &Host{Name: "db", Conn: c}
	v, err := readPostgresqlRolePassword(t.Context(), h, Control{}, []string{"", "app", "secret"})
	if err != nil || v != starlark.None {
		t.Errorf("got %v, %v; want None", v, err)
	}
	c.On("psql", connectors.Result{Stdout: readCapture(t, "postgresql_authid_absent.txt")})
	if v, err := readPostgresqlRolePassword(t.Context(), h, Control{}, []string{"", "nobody", "secret"}); err != nil || v != starlark.None {
		t.Errorf("a missing role: %v, %v; want None", v, err)
	}
	c.On("psql", connectors.Result{Stdout: readCapture(t, "postgresql_authid_app.txt")})
	if v, err := readPostgresqlRolePassword(t.Context(), h, Control{}, []string{"", "app", "secret"}); err != nil || v != starlark.True {
		t.Errorf("app's password: %v, %v; want True", v, err)
	}
}
