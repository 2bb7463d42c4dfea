package connectors_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// deferred returns a registry of "local" and "test" whose Defer supplies
// "plug" (with the key plug_token), a second "local" and a bad scheme, and
// a counter of the calls of find.
func deferred() (*connectors.Registry, *int) {
	r := connectors.NewRegistry(testFactory{scheme: "local"}, testFactory{scheme: "test", fields: []connectors.Field{field("test_port")}})
	calls := new(int)
	r.Defer(func() []connectors.Factory {
		*calls++
		return []connectors.Factory{
			testFactory{scheme: "plug", fields: []connectors.Field{{Name: "plug_token", Type: "string", Secret: true}}},
			testFactory{scheme: "local", fields: []connectors.Field{field("local_x")}},
			testFactory{scheme: "a/b"},
			nil,
		}
	})
	return r, calls
}

func TestDeferNotCalledForRegisteredAnswers(t *testing.T) {
	r, calls := deferred()
	if _, ok := r.Lookup("local"); !ok {
		t.Fatal("Lookup(local) failed")
	}
	if _, err := r.Target("@local", map[string]string{"dir": "/tmp"}); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckKey("dir"); err != nil || r.IsSecretKey("dir") || r.Expands("@local") {
		t.Fatalf("CheckKey(dir) %v, IsSecretKey %v", err, r.IsSecretKey("dir"))
	}
	// A key a registered factory declares (as every run's ssh_ keys are)
	// needs no plugin from PATH.
	if err := r.CheckKey("test_port"); err != nil || r.IsSecretKey("test_port") {
		t.Fatalf("CheckKey(test_port) %v", err)
	}
	if _, ok := r.Field("test_port"); !ok {
		t.Fatal("Field(test_port) not found")
	}
	if *calls != 0 {
		t.Errorf("find called %d times for answers the registered factories give", *calls)
	}
}

func TestDeferFoundWhenNeeded(t *testing.T) {
	for name, ask := range map[string]func(r *connectors.Registry) bool{
		"Lookup": func(r *connectors.Registry) bool { _, ok := r.Lookup("plug"); return ok },
		"Target": func(r *connectors.Registry) bool {
			t, err := r.Target("@plug/x", nil)
			return err == nil && t.Scheme == "plug"
		},
		"Schemes": func(r *connectors.Registry) bool { return slices.Equal(r.Schemes(), []string{"local", "plug", "test"}) },
		"CheckKey": func(r *connectors.Registry) bool {
			err := r.CheckKey("plug_tokn")
			return err != nil && strings.Contains(err.Error(), `did you mean "plug_token"`)
		},
		"IsSecretKey": func(r *connectors.Registry) bool { return r.IsSecretKey("plug_token") },
		"unknown": func(r *connectors.Registry) bool {
			_, err := r.Target("@nope", nil)
			return err != nil && strings.Contains(err.Error(), "known connectors: @local, @plug, @test")
		},
	} {
		r, calls := deferred()
		if !ask(r) {
			t.Errorf("%s: wrong answer with a deferred factory", name)
		}
		ask(r)
		if *calls != 1 {
			t.Errorf("%s: find called %d times, want 1", name, *calls)
		}
		// A registered factory wins over a deferred one of its scheme.
		if err := r.CheckKey("local_x"); err == nil {
			t.Errorf("%s: local_x accepted: the deferred @local replaced the registered one", name)
		}
	}
}

func TestDeferConcurrent(t *testing.T) {
	r, calls := deferred()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Lookup("local")
			r.Lookup("plug")
			r.IsSecretKey("plug_token")
		}()
	}
	wg.Wait()
	if *calls != 1 {
		t.Errorf("find called %d times, want 1", *calls)
	}
}
