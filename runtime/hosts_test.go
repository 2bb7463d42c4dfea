package runtime_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// pool is a fake factory whose "@fake/pool" stands for two hosts.
type pool struct{ *fake.Factory }

func (pool) Expands(addr string) bool { return addr == "pool" }

func (pool) Expand(ctx context.Context, addr string, data map[string]string) ([]connectors.Expansion, error) {
	return []connectors.Expansion{
		{Name: "@fake/a", Data: map[string]any{"role": "web", "port": int64(80)}, Groups: []string{"web"}},
		{Name: "@fake/b", Groups: []string{"web", "db"}},
	}, nil
}

func TestRunnerHostsExpands(t *testing.T) {
	reg := connectors.NewRegistry(pool{fake.NewFactory(nil)})
	r := sdrt.New(sdrt.Options{Connectors: reg})
	hosts, err := r.Hosts(t.Context(), "@fake/pool", map[string]any{"role": "db"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 || hosts[0].Name != "@fake/a" || hosts[1].Name != "@fake/b" {
		t.Fatalf("hosts = %+v", hosts)
	}
	// The caller's data wins over the expansion's.
	if want := map[string]any{"role": "db", "port": int64(80)}; !reflect.DeepEqual(hosts[0].Data, want) {
		t.Errorf("data = %v, want %v", hosts[0].Data, want)
	}
	if !reflect.DeepEqual(hosts[1].Groups, []string{"web", "db"}) {
		t.Errorf("groups = %q", hosts[1].Groups)
	}
	one, err := r.Hosts(t.Context(), "@fake/single", nil)
	if err != nil || len(one) != 1 || one[0].Name != "@fake/single" {
		t.Errorf("a single host: %+v, %v", one, err)
	}
	if _, err := r.Host("@fake/pool", nil); err == nil || !strings.Contains(err.Error(), "names many hosts") {
		t.Errorf("Host of an expanding name: %v", err)
	}
}
