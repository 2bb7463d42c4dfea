package runtime_test

import (
	"context"
	"fmt"
	"testing/fstest"
	"time"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// An embedding program compiles a script from bytes and runs it on hosts of
// its choosing; here, an in-memory host.
func Example() {
	r := sdrt.New(sdrt.Options{
		MaxSteps: 1_000_000,
		OnEvent: func(e sdrt.Event) {
			if e.Kind == "print" {
				fmt.Println(e.Host, "says", e.Message)
			}
		},
	})
	prog, err := r.Compile(context.Background(), "app.star", []byte(`
r = shell("deploy-app --version")
print(r.stdout.strip())
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	f := fake.NewFactory(func(t connectors.Target) *fake.Conn {
		return fake.New(t.Name).On("deploy-app", connectors.Result{Stdout: []byte("v1.2\n")})
	})
	hosts := []sdrt.Host{
		{Name: "a", Factory: f, Target: connectors.Target{Scheme: "fake", Name: "a"}},
	}
	report := r.Run(context.Background(), []*sdrt.Program{prog}, hosts)
	fmt.Println("failed hosts:", report.Failed(), "changed:", report.Hosts[0].Counts.Changed)
	// Output:
	// a says v1.2
	// failed hosts: 0 changed: 1
}

// An app that runs automation its users wrote: scripts and their files
// come from an fs.FS, only host reads and writes are allowed (no local
// files beyond the FS, no network of their own), only the app's own
// connector may be used, and steps and time are bounded.
func Example_sandbox() {
	userFiles := fstest.MapFS{
		"deploy.star": {Data: []byte(`
load("lib/motd.star", "motd")
put("/etc/motd", content = motd(host.name))
print(fact("hostname"))
`)},
		"lib/motd.star": {Data: []byte(`def motd(name):
    return "welcome to %s\n" % name
`)},
	}
	r := sdrt.New(sdrt.Options{
		MaxSteps: 100_000,
		Timeout:  time.Minute,
		Sandbox: &sdrt.Sandbox{
			Files:      userFiles,
			Effects:    builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS,
			Connectors: []string{"fake"},
		},
		Print: func(host, msg string) { fmt.Printf("%s: %s\n", host, msg) },
	})
	prog, err := r.Compile(context.Background(), "deploy.star", nil) // read from userFiles
	if err != nil {
		fmt.Println(err)
		return
	}
	conn := fake.New("web1").On("uname -n", connectors.Result{Stdout: []byte("web1\n")}).On("p=", connectors.Result{ExitCode: 3})
	f := fake.NewFactory(func(connectors.Target) *fake.Conn { return conn })
	report := r.Run(context.Background(), []*sdrt.Program{prog}, []sdrt.Host{
		{Name: "web1", Factory: f, Target: connectors.Target{Scheme: "fake", Name: "web1"}},
	})
	motd, _ := conn.File("/etc/motd")
	fmt.Printf("err=%v changed=%d motd=%q\n", report.Hosts[0].Err, report.Hosts[0].Counts.Changed, motd.Content)
	// Output:
	// web1: web1
	// err=<nil> changed=1 motd="welcome to web1\n"
}
