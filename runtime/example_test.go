package runtime_test

import (
	"context"
	"fmt"

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
