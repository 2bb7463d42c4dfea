package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing/fstest"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// An app compiles a script once and runs it on the hosts it chooses: here
// this machine, through the local connector, with the embedded stdlib.
func Example() {
	r := sdrt.New(sdrt.Options{
		Connectors: connectors.NewRegistry(local.NewFactory()),
		Stdlib:     stdlib.FS,
		MaxSteps:   1_000_000,
		Print:      func(host, msg string) { fmt.Println(host, "says", msg) },
	})
	prog, err := r.Compile(context.Background(), "app.star", []byte(`
load("@stdlib//files.star", "files")
conf = host.data["dir"] + "/app.conf"
files.line(conf, "port = 8080")
print(shell("cat " + conf).stdout.strip())
`))
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	host, err2 := r.Host("@local", map[string]any{"dir": dir})
	if err := errors.Join(err, err2); err != nil {
		fmt.Println(err)
		return
	}
	report := r.Run(context.Background(), []*sdrt.Program{prog}, []sdrt.Host{host})
	fmt.Println("failed hosts:", report.Failed(), "changed:", report.Hosts[0].Counts.Changed)
	// Output:
	// @local says port = 8080
	// failed hosts: 0 changed: 2
}

// An app that runs automation its users wrote: scripts and their files
// come from an fs.FS, scripts may read and change hosts but reach no other
// local file and no network of their own, only @local may be used, and
// steps and time are bounded.
func Example_sandbox() {
	userFiles := fstest.MapFS{
		"deploy.star":   {Data: []byte("load('lib/motd.star', 'motd')\nput(host.data['dir'] + '/motd', content = motd(host.name))\n")},
		"lib/motd.star": {Data: []byte("def motd(name):\n    return 'welcome to %s\\n' % name\n")},
	}
	r := sdrt.New(sdrt.Options{
		Connectors: connectors.NewRegistry(local.NewFactory()),
		MaxSteps:   100_000,
		Timeout:    time.Minute,
		Sandbox: &sdrt.Sandbox{
			Files:      userFiles,
			Effects:    sdrt.EffectReadHost | sdrt.EffectWriteHost | sdrt.EffectLocalFS,
			Connectors: []string{"local"},
		},
	})
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	prog, err := r.Compile(context.Background(), "deploy.star", nil) // read from userFiles
	host, err2 := r.Host("@local", map[string]any{"dir": dir})
	if err := errors.Join(err, err2); err != nil {
		fmt.Println(err)
		return
	}
	report := r.Run(context.Background(), []*sdrt.Program{prog}, []sdrt.Host{host})
	motd, _ := os.ReadFile(filepath.Join(dir, "motd"))
	fmt.Printf("err=%v changed=%d motd=%q\n", report.Hosts[0].Err, report.Hosts[0].Counts.Changed, motd)
	// Output:
	// err=<nil> changed=1 motd="welcome to @local\n"
}
