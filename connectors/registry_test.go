package connectors_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/star-deploy/star-deploy/connectors"
)

// testFactory is a Factory whose Parse records what it was given.
type testFactory struct {
	scheme string
	fields []connectors.Field
}

func (f testFactory) Scheme() string             { return f.scheme }
func (f testFactory) Doc() string                { return "a connector for tests" }
func (f testFactory) Fields() []connectors.Field { return f.fields }
func (f testFactory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr == "bad" {
		return connectors.Target{}, errors.New("bad address")
	}
	return connectors.Target{Addr: addr, Data: data}, nil
}
func (f testFactory) Open(context.Context, connectors.Target) (connectors.Connector, error) {
	return nil, errors.ErrUnsupported
}

func field(name string) connectors.Field {
	return connectors.Field{Name: name, Type: "string", Doc: "a field"}
}

func testRegistry() *connectors.Registry {
	return connectors.NewRegistry(
		testFactory{scheme: "test", fields: []connectors.Field{field("test_port"), field("test_user")}},
		testFactory{scheme: "local"},
		testFactory{scheme: "ssh", fields: []connectors.Field{field("ssh_user"), field("ssh_port")}},
	)
}

func TestSplitName(t *testing.T) {
	for _, tt := range []struct{ in, scheme, addr string }{
		{"@local", "local", ""},
		{"@ssh/db1", "ssh", "db1"},
		{"db1", "ssh", "db1"},
		{"deploy@10.0.0.5:22", "ssh", "deploy@10.0.0.5:22"},
		{"@ssh/deploy@db1:2222", "ssh", "deploy@db1:2222"},
		{"@docker/web", "docker", "web"},
		{"@docker/registry.io/img:tag", "docker", "registry.io/img:tag"},
		{"@ssh/", "ssh", ""},
		{"@", "", ""},
		{"@/x", "", "x"},
		{"", "ssh", ""},
	} {
		scheme, addr := connectors.SplitName(tt.in)
		if scheme != tt.scheme || addr != tt.addr {
			t.Errorf("SplitName(%q) = (%q, %q), want (%q, %q)", tt.in, scheme, addr, tt.scheme, tt.addr)
		}
	}
}

func TestRegistryTarget(t *testing.T) {
	r := testRegistry()
	tg, err := r.Target("@test/h1", map[string]string{"test_port": "22", "ssh_user": "x", "role": "web"})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Scheme != "test" || tg.Name != "@test/h1" || tg.Addr != "h1" {
		t.Errorf("target %+v", tg)
	}
	if len(tg.Data) != 1 || tg.Data["test_port"] != "22" {
		t.Errorf("Parse got data %v, want only the test_ keys", tg.Data)
	}

	tg, err = r.Target("db1", nil)
	if err != nil || tg.Scheme != "ssh" || tg.Addr != "db1" {
		t.Errorf("bare name: %+v, %v", tg, err)
	}

	for _, tt := range []struct {
		name string
		data map[string]string
		want []string
	}{
		{"@nope/x", nil, []string{`host "@nope/x"`, `unknown connector "nope"`, "@local, @ssh, @test"}},
		{"@", nil, []string{`unknown connector ""`}},
		{"", nil, []string{"empty host name"}},
		{"@test/bad", nil, []string{`host "@test/bad"`, "bad address"}},
		{"@test/h", map[string]string{"test_prot": "1"}, []string{`host "@test/h"`, `did you mean "test_port"`}},
		{"@local", map[string]string{"ssh_usr": "1"}, []string{`did you mean "ssh_user"`}},
	} {
		_, err := r.Target(tt.name, tt.data)
		if err == nil {
			t.Errorf("Target(%q, %v): no error", tt.name, tt.data)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Target(%q, %v) error %q, want it to contain %q", tt.name, tt.data, err, w)
			}
		}
	}

	noSSH := connectors.NewRegistry(testFactory{scheme: "local"})
	if _, err := noSSH.Target("db1", nil); err == nil || !strings.Contains(err.Error(), "ssh connector is not available") {
		t.Errorf("bare name without ssh: %v", err)
	}
	if _, err := new(connectors.Registry).Target("@x", nil); err == nil || !strings.Contains(err.Error(), "none registered") {
		t.Errorf("empty registry: %v", err)
	}
}

func TestRegistryCheckKey(t *testing.T) {
	r := testRegistry()
	for _, tt := range []struct {
		key  string
		want string // "" means no error
	}{
		{"test_port", ""},
		{"ssh_user", ""},
		{"role", ""},
		{"localhost", ""},
		{"sshuser", ""},
		{"test_prot", `unknown data key "test_prot" for the test connector (did you mean "test_port"?)`},
		{"test_usr", `did you mean "test_user"`},
		{"test_completely_else", "known keys: test_port, test_user"},
		{"local_xyz", `unknown data key "local_xyz" for the local connector; it takes no data keys`},
	} {
		err := r.CheckKey(tt.key)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckKey(%q) = %v, want nil", tt.key, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckKey(%q) = %v, want an error containing %q", tt.key, err, tt.want)
		}
	}

	// The longest scheme owns a key, whatever the map order.
	nested := connectors.NewRegistry(
		testFactory{scheme: "a", fields: []connectors.Field{field("a_x")}},
		testFactory{scheme: "a_b", fields: []connectors.Field{field("a_b_port")}},
	)
	for range 50 {
		if err := nested.CheckKey("a_b_port"); err != nil {
			t.Fatalf("CheckKey(a_b_port) = %v", err)
		}
	}
	if err := nested.CheckKey("a_b_prot"); err == nil || !strings.Contains(err.Error(), `did you mean "a_b_port"`) {
		t.Errorf("CheckKey(a_b_prot) = %v", err)
	}
}

func TestRegistryRegister(t *testing.T) {
	var r connectors.Registry // the zero value is ready to use
	if err := r.Register(testFactory{scheme: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(testFactory{scheme: "a", fields: []connectors.Field{field("a_k")}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(testFactory{scheme: "a"}); err == nil || !strings.Contains(err.Error(), `connector "a" registered twice`) {
		t.Errorf("duplicate: %v", err)
	}
	for _, bad := range []string{"", "a/b", "@a"} {
		if err := r.Register(testFactory{scheme: bad}); err == nil {
			t.Errorf("Register(scheme %q): no error", bad)
		}
	}
	if err := r.Register(nil); err == nil {
		t.Errorf("Register(nil): no error")
	}
	if got := r.Schemes(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Schemes() = %v", got)
	}
	if fs := r.Factories(); len(fs) != 2 || fs[0].Scheme() != "a" {
		t.Errorf("Factories() not sorted")
	}
	if f, ok := r.Lookup("b"); !ok || f.Scheme() != "b" {
		t.Errorf("Lookup(b) = %v, %v", f, ok)
	}
	if _, ok := r.Lookup("c"); ok {
		t.Errorf("Lookup(c) found something")
	}
	if fld, ok := r.Field("a_k"); !ok || fld.Name != "a_k" {
		t.Errorf("Field(a_k) = %+v, %v", fld, ok)
	}
	if _, ok := r.Field("a_nope"); ok {
		t.Errorf("Field(a_nope) found something")
	}

	defer func() {
		if p := recover(); p == nil || !strings.HasPrefix(p.(string), "internal error:") {
			t.Errorf("NewRegistry with a duplicate: panic %v, want an internal error", p)
		}
	}()
	connectors.NewRegistry(testFactory{scheme: "x"}, testFactory{scheme: "x"})
}

func TestExitError(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes; byte 200 is inside no rune
	for _, tt := range []struct {
		name   string
		stderr string
		want   string
	}{
		{"no stderr", "", `command "apt-get install x" on web1 exited with status 100`},
		{"last line", "first\nE: Unable to locate package x\n\n", `command "apt-get install x" on web1 exited with status 100: E: Unable to locate package x`},
		{"crlf and blanks", "only line \r\n \t\n", `exited with status 100: only line`},
		{"long", long + "\n", "exited with status 100: " + strings.Repeat("é", 100) + "…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &connectors.ExitError{Target: "web1", Script: "apt-get install x", Result: connectors.Result{ExitCode: 100, Stderr: []byte(tt.stderr)}}
			got := e.Error()
			if !strings.Contains(got, tt.want) || (tt.name != "long" && !strings.HasSuffix(got, tt.want)) {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Error() is not valid UTF-8: %q", got)
			}
			var target *connectors.ExitError
			if !errors.As(error(e), &target) {
				t.Errorf("errors.As failed")
			}
		})
	}

	odd := strings.Repeat("a", 199) + "é" // the cut at 200 falls inside é
	e := &connectors.ExitError{Target: "h", Script: "s", Result: connectors.Result{ExitCode: 1, Stderr: []byte(odd)}}
	if got := e.Error(); !utf8.ValidString(got) || !strings.HasSuffix(got, strings.Repeat("a", 199)+"…") {
		t.Errorf("Error() = %q, want 199 a's and an ellipsis", got)
	}
}
