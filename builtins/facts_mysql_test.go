package builtins

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// The captures under testdata/facts/mysql come from MariaDB 10.11 on
// Debian 12 (see testdata/facts/README.md).
func TestParseMysqlDatabases(t *testing.T) {
	got := parseMysqlDatabases(captureText(t, "mysql/databases.txt"))
	want := map[string]mysqlDatabase{
		"appdb":              {Charset: "utf8mb4", Collation: "utf8mb4_unicode_ci", Tables: 1},
		"information_schema": {Charset: "utf8mb3", Collation: "utf8mb3_general_ci", Tables: 79},
		"mysql":              {Charset: "utf8mb4", Collation: "utf8mb4_general_ci", Tables: 31},
		"odd_db":             {Charset: "utf8mb4", Collation: "utf8mb4_general_ci", Tables: 0},
		"performance_schema": {Charset: "utf8mb3", Collation: "utf8mb3_general_ci", Tables: 81},
		"sys":                {Charset: "utf8mb3", Collation: "utf8mb3_general_ci", Tables: 101},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := parseMysqlDatabases(""); len(got) != 0 {
		t.Errorf("no output: got %v", got)
	}
}

func TestParseMysqlUsers(t *testing.T) {
	text := captureText(t, "mysql/users.txt")
	got := parseMysqlUsers(text)
	if len(got) != 5 {
		t.Errorf("want 5 accounts, got %d: %v", len(got), got)
	}
	app := got["app@localhost"]
	if app.User != "app" || app.Host != "localhost" || app.Plugin != "mysql_native_password" || len(app.Privileges) != 0 || app.IsRole {
		t.Errorf("app@localhost = %+v", app)
	}
	if ro := got["ro@%"]; !reflect.DeepEqual(ro.Privileges, []string{"Grant", "Process", "Reload"}) {
		t.Errorf("ro@%% privileges = %v", ro.Privileges)
	}
	if root := got["root@localhost"]; len(root.Privileges) < 20 {
		t.Errorf("root@localhost privileges = %v", root.Privileges)
	}
	// The capture holds app's password hash; the fact must not.
	hash := "*A9ECB8BBEACD3F24B66568E45A3082BE040257E7"
	if !strings.Contains(text, hash) {
		t.Fatal("the capture has no password hash to leave out")
	}
	for k, u := range got {
		if strings.Contains(strings.Join(append([]string{u.User, u.Host, u.Plugin}, u.Privileges...), " "), hash) {
			t.Errorf("%s keeps the password hash: %+v", k, u)
		}
	}
}

func TestParseMysqlGrants(t *testing.T) {
	for _, tt := range []struct {
		file string
		want map[string][]string
	}{
		{"grants_app.txt", map[string][]string{
			"*.*":         {"USAGE"},
			"appdb.*":     {"INSERT", "SELECT"},
			"odd_db.*":    {"ALL", "GRANT OPTION"},
			"appdb.items": {"SELECT (`id`)", "UPDATE"},
		}},
		{"grants_ro.txt", map[string][]string{"*.*": {"GRANT OPTION", "PROCESS", "RELOAD"}}},
		// IDENTIFIED VIA ... USING 'invalid' OR unix_socket before WITH
		// GRANT OPTION; the PROXY grant is left out.
		{"grants_root.txt", map[string][]string{"*.*": {"ALL", "GRANT OPTION"}}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			if got := parseMysqlGrants(captureText(t, "mysql/"+tt.file)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
		})
	}
	// Names with a backtick, and a role grant.
	got := parseMysqlGrants("GRANT SELECT ON `we``ird`.`t` TO `u`@`%`\nGRANT `admin` TO `u`@`%`\n")
	if want := map[string][]string{"we`ird.t": {"SELECT"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestMysqlErrors(t *testing.T) {
	if n := mysqlErrorCode(captureText(t, "mysql/grants_nouser.stderr")); n != 1141 {
		t.Errorf("no such grant: code %d", n)
	}
	lines := strings.Split(strings.TrimSpace(captureText(t, "mysql/noserver.stderr")), "\n")
	if len(lines) != 3 {
		t.Fatalf("noserver.stderr: %q", lines)
	}
	for _, l := range lines {
		if !mysqlUnreachable(connectors.Result{ExitCode: 1, Stderr: []byte(l + "\n")}) {
			t.Errorf("not taken as no server: %s", l)
		}
	}
	if !mysqlUnreachable(connectors.Result{ExitCode: 127, Stderr: []byte("sh: 1: mysql: not found\n")}) {
		t.Error("exit 127 is no client")
	}
	if mysqlUnreachable(connectors.Result{ExitCode: 1, Stderr: []byte("ERROR 1045 (28000): Access denied for user 'app'@'localhost' (using password: YES)\n")}) {
		t.Error("access denied is an answer, not the lack of one")
	}
}

// TestMysqlCommandKeepsThePasswordOffTheCommandLine: the password goes on
// standard input as an option file line, never into the script (which is
// in the host's argv); the rest of standard input follows it.
func TestMysqlCommandKeepsThePasswordOffTheCommandLine(t *testing.T) {
	pw := `p #"'\ $x`
	c := mysqlConn{user: "admin", password: pw, host: "db1", port: "3307"}
	script, stdin := c.command("mysql", "--batch", "SELECT 1;\n")
	if strings.Contains(script, pw) || strings.Contains(script, "p #") {
		t.Errorf("the password is in the script: %s", script)
	}
	if want := `IFS= read -r l && { { printf '[client]\n%s\n' "$l" | { mysql --defaults-extra-file=/dev/fd/3 --user=admin --host=db1 --port=3307 --batch 3<&0 0<&4 4<&-; }; } 4<&0; }`; script != want {
		t.Errorf("script:\n%s\nwant\n%s", script, want)
	}
	if want := `password="p #\"'\\ $x"` + "\nSELECT 1;\n"; stdin != want {
		t.Errorf("stdin = %q, want %q", stdin, want)
	}
	// Run by sh with a mysql that prints its option file, its input and its
	// arguments: the option file comes through fd 3, the SQL on stdin, and
	// no file is left behind.
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "mysql"), []byte("#!/bin/sh\ncat /dev/fd/3; echo ---; cat; echo \"args: $*\"\n"), 0o755)
	cmd := exec.Command("sh", "-c", script+" >"+filepath.Join(bin, "out"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TMPDIR="+bin)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	out, _ := os.ReadFile(filepath.Join(bin, "out"))
	if want := "[client]\n" + `password="p #\"'\\ $x"` + "\n---\nSELECT 1;\nargs: --defaults-extra-file=/dev/fd/3 --user=admin --host=db1 --port=3307 --batch\n"; string(out) != want {
		t.Errorf("the client got\n%s\nwant\n%s", out, want)
	}
	// With the SQL from a file after the wrapper (mysql.restore): the
	// password still comes from stdin, the SQL from the file.
	os.WriteFile(filepath.Join(bin, "app.sql"), []byte("SELECT 2;\n"), 0o644)
	cmd = exec.Command("sh", "-c", script+" <"+filepath.Join(bin, "app.sql")+" >"+filepath.Join(bin, "out"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TMPDIR="+bin)
	cmd.Stdin = strings.NewReader(`password="x"` + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	if out, _ := os.ReadFile(filepath.Join(bin, "out")); !strings.HasPrefix(string(out), "[client]\npassword=\"x\"\n---\nSELECT 2;\n") {
		t.Errorf("with <app.sql the client got\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(bin, "*")); len(left) != 3 {
		t.Errorf("files left: %q", left)
	}
	script, stdin = mysqlConn{}.command("mysqldump", "app", "")
	if script != "mysqldump app" || stdin != "" {
		t.Errorf("no connection arguments: %q, %q", script, stdin)
	}
	if got := mysqlOptionValue("a\nb\tc\\"); got != `"a\nb\tc\\"` {
		t.Errorf("option value: %s", got)
	}
}
