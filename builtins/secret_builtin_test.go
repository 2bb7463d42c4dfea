package builtins_test

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
)

// TestSecretBuiltin: secret() reads the secret host data that host.data
// leaves out, refuses keys that are not secret, and says how to pass a
// missing one.
func TestSecretBuiltin(t *testing.T) {
	h := &builtins.Host{Name: "db1", Data: map[string]any{"db_password": "canary-pw", "role": "db"}}
	thread := &starlark.Thread{Name: "test"}
	builtins.WithHost(thread, t.Context(), h)
	globals := builtins.Predeclared(^builtins.Effect(0))
	globals["host"] = h.Value()
	for _, tc := range []struct{ expr, want, err string }{
		{expr: `secret("db_password")`, want: `"canary-pw"`},
		{expr: `"db_password" in host.data`, want: `False`},
		{expr: `secret("api_passphrase", default = None)`, want: `None`},
		{expr: `secret("api_passphrase", "x")`, want: `"x"`},
		{expr: `secret("role")`, err: `secret: "role" is not a secret data key; read it with host.data["role"]`},
		{expr: `secret("api_passphrase")`, err: `secret: host db1 has no data api_passphrase: pass it with --data api_passphrase=...`},
	} {
		v, err := starlark.EvalOptions(&syntax.FileOptions{}, thread, "test.star", tc.expr, globals)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.expr, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.err == "" && v.String() != tc.want:
			t.Errorf("%s = %s, want %s", tc.expr, v, tc.want)
		}
	}
}
