package builtins_test

import (
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/star-deploy/star-deploy/builtins"
)

// TestHostDataRedactsSecrets: host.data, what a script sees, holds no
// secret key (connectors.IsSecretKey), whoever set it.
func TestHostDataRedactsSecrets(t *testing.T) {
	secrets := []string{"sudo_password", "ssh_password", "ssh_key_password", "db_password", "gpg_passphrase"}
	data := map[string]any{"role": "web", "ssh_user": "deploy"}
	for _, k := range secrets {
		data[k] = "canary-" + k
	}
	h := &builtins.Host{Name: "h", Data: data}
	v, err := h.Value().(*starlarkstruct.Struct).Attr("data")
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*starlark.Dict)
	for _, k := range secrets {
		if _, found, _ := d.Get(starlark.String(k)); found {
			t.Errorf("host.data holds the secret %s: %s", k, d)
		}
	}
	for _, k := range []string{"role", "ssh_user"} {
		if _, found, _ := d.Get(starlark.String(k)); !found {
			t.Errorf("host.data lacks %s: %s", k, d)
		}
	}
}
