package fake_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
)

func TestRunResponses(t *testing.T) {
	c := fake.New("web1").
		On("systemctl", connectors.Result{ExitCode: 1, Stderr: []byte("generic")}).
		On("systemctl is-active nginx", connectors.Result{ExitCode: 3, Stdout: []byte("inactive\n")})
	for _, tt := range []struct {
		script string
		code   int
		stdout string
		stderr string
	}{
		{"systemctl is-active nginx", 3, "inactive\n", ""},
		{"systemctl is-active nginx --quiet", 3, "inactive\n", ""},
		{"systemctl restart nginx", 1, "", "generic"},
		{"echo unscripted", 0, "", ""},
	} {
		var live bytes.Buffer
		res, err := c.Run(t.Context(), connectors.Command{Script: tt.script, Stdout: &live, Stdin: strings.NewReader("in")})
		if err != nil {
			t.Fatalf("run %q: %v", tt.script, err)
		}
		if res.ExitCode != tt.code || string(res.Stdout) != tt.stdout || string(res.Stderr) != tt.stderr {
			t.Errorf("run %q = %d %q %q, want %d %q %q", tt.script, res.ExitCode, res.Stdout, res.Stderr, tt.code, tt.stdout, tt.stderr)
		}
		if live.String() != tt.stdout {
			t.Errorf("run %q: live stdout %q", tt.script, live.String())
		}
		if res.Duration <= 0 {
			t.Errorf("run %q: Duration %v", tt.script, res.Duration)
		}
	}
	want := []string{"systemctl is-active nginx", "systemctl is-active nginx --quiet", "systemctl restart nginx", "echo unscripted"}
	if got := c.Commands(); !slices.Equal(got, want) {
		t.Errorf("Commands() = %q, want %q", got, want)
	}

	c.On("", connectors.Result{ExitCode: 9})
	if res, _ := c.Run(t.Context(), connectors.Command{Script: "anything"}); res.ExitCode != 9 {
		t.Errorf("default response: exit %d, want 9", res.ExitCode)
	}
}

func TestOnFunc(t *testing.T) {
	boom := errors.New("connection lost")
	c := fake.New("h").
		OnFunc("fail", func(context.Context, connectors.Command) (connectors.Result, error) {
			return connectors.Result{}, boom
		}).
		OnFunc("block", func(ctx context.Context, _ connectors.Command) (connectors.Result, error) {
			<-ctx.Done()
			return connectors.Result{}, ctx.Err()
		}).
		OnFunc("echo ", func(_ context.Context, cmd connectors.Command) (connectors.Result, error) {
			return connectors.Result{Stdout: []byte(strings.TrimPrefix(cmd.Script, "echo ") + "\n")}, nil
		})
	if _, err := c.Run(t.Context(), connectors.Command{Script: "fail"}); !errors.Is(err, boom) || !strings.Contains(err.Error(), "run on h") {
		t.Errorf("fail: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Run(ctx, connectors.Command{Script: "block"}); !errors.Is(err, context.Canceled) {
		t.Errorf("block: %v", err)
	}
	if res, _ := c.Run(t.Context(), connectors.Command{Script: "echo hi"}); string(res.Stdout) != "hi\n" {
		t.Errorf("echo: %q", res.Stdout)
	}
}

func TestFiles(t *testing.T) {
	c := fake.New("h").SetFile("/etc/hosts", []byte("127.0.0.1 localhost\n"), 0o644)
	var b bytes.Buffer
	if err := c.Get(t.Context(), "/etc/hosts", &b); err != nil || b.String() != "127.0.0.1 localhost\n" {
		t.Errorf("get seeded file: %q, %v", b.String(), err)
	}
	err := c.Get(t.Context(), "/missing", &b)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "get /missing from h") {
		t.Errorf("get missing: %v", err)
	}
	if err := c.Put(t.Context(), "/etc/motd", strings.NewReader("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, ok := c.File("/etc/motd"); !ok || string(f.Content) != "hello" || f.Mode != 0o600 {
		t.Errorf("File(/etc/motd) = %+v, %v", f, ok)
	}
	if err := c.Put(t.Context(), "/empty", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Put(ctx, "/etc/motd", strings.NewReader("new"), 0o644); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled put: %v", err)
	}
	if f, _ := c.File("/etc/motd"); string(f.Content) != "hello" {
		t.Errorf("cancelled put changed the file to %q", f.Content)
	}
	if got := c.Puts(); !slices.Equal(got, []string{"/etc/motd", "/empty"}) {
		t.Errorf("Puts() = %q", got)
	}
	if got := c.Paths(); !slices.Equal(got, []string{"/empty", "/etc/hosts", "/etc/motd"}) {
		t.Errorf("Paths() = %q", got)
	}
	// File returns a copy.
	f, _ := c.File("/etc/motd")
	f.Content[0] = 'X'
	if f2, _ := c.File("/etc/motd"); string(f2.Content) != "hello" {
		t.Errorf("File does not return a copy")
	}
}

func TestFactory(t *testing.T) {
	hosts := map[string]*fake.Conn{"@fake/web1": fake.New("@fake/web1").On("hostname", connectors.Result{Stdout: []byte("web1\n")})}
	f := fake.NewFactory(func(tg connectors.Target) *fake.Conn { return hosts[tg.Name] })
	r := connectors.NewRegistry(f)
	tg, err := r.Target("@fake/web1", map[string]string{"role": "web"})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Scheme != "fake" || tg.Name != "@fake/web1" || tg.Addr != "web1" {
		t.Errorf("target %+v", tg)
	}
	c, err := f.Open(t.Context(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := c.Run(t.Context(), connectors.Command{Script: "hostname"}); string(res.Stdout) != "web1\n" {
		t.Errorf("pre-seeded response: %q", res.Stdout)
	}
	if _, err := f.Open(t.Context(), connectors.Target{Name: "@fake/other"}); err == nil {
		t.Errorf("open of an unknown host: no error")
	}
	if err := r.CheckKey("fake_x"); err == nil {
		t.Errorf("CheckKey(fake_x): no error")
	}
	for range 2 {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	if !hosts["@fake/web1"].Closed() {
		t.Errorf("Closed() = false after Close")
	}

	fresh, err := fake.NewFactory(nil).Open(t.Context(), connectors.Target{Scheme: "fake", Name: "@fake/a"})
	if err != nil || fresh.Target().Name != "@fake/a" {
		t.Errorf("nil newConn: %v, %v", fresh, err)
	}
}

func TestConcurrent(t *testing.T) {
	c := fake.New("h")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			p := fmt.Sprintf("/f%d", i)
			c.On(p, connectors.Result{ExitCode: i})
			_ = c.Put(t.Context(), p, strings.NewReader(p), 0o644)
			_, _ = c.Run(t.Context(), connectors.Command{Script: p})
			var b bytes.Buffer
			_ = c.Get(t.Context(), p, &b)
		})
	}
	wg.Wait()
	if len(c.Commands()) != 20 || len(c.Puts()) != 20 {
		t.Errorf("recorded %d commands and %d puts", len(c.Commands()), len(c.Puts()))
	}
}

func BenchmarkRun(b *testing.B) {
	c := fake.New("h").On("x", connectors.Result{Stdout: []byte("ok")})
	for b.Loop() {
		_, _ = c.Run(b.Context(), connectors.Command{Script: "x y"})
	}
}

func TestLatency(t *testing.T) {
	c := fake.New("web1").Latency(time.Microsecond).On("uname", connectors.Result{Stdout: []byte("Linux\n")})
	res, err := c.Run(t.Context(), connectors.Command{Script: "uname"})
	if err != nil || string(res.Stdout) != "Linux\n" || res.Duration <= 0 {
		t.Fatalf("run with latency = %+v, %v; want Linux and a duration", res, err)
	}
	if err := c.Put(t.Context(), "/f", strings.NewReader("x"), 0o644); err != nil {
		t.Fatalf("put with latency: %v", err)
	}
	var b bytes.Buffer
	if err := c.Get(t.Context(), "/f", &b); err != nil || b.String() != "x" {
		t.Fatalf("get with latency = %q, %v", b.String(), err)
	}

	// A wait that would outlast the test ends with the context.
	slow := fake.New("web2").Latency(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := slow.Run(ctx, connectors.Command{Script: "true"}); !errors.Is(err, context.Canceled) {
		t.Errorf("run with a cancelled context = %v, want context.Canceled", err)
	}
	if err := slow.Put(ctx, "/f", strings.NewReader("x"), 0o644); !errors.Is(err, context.Canceled) {
		t.Errorf("put with a cancelled context = %v, want context.Canceled", err)
	}
	if _, ok := slow.File("/f"); ok {
		t.Error("a cancelled put wrote the file")
	}
	if err := slow.Get(ctx, "/f", io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("get with a cancelled context = %v, want context.Canceled", err)
	}
}
