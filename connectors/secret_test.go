package connectors_test

import (
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// TestIsSecretKey: the keys star-deploy keeps out of host.data, events and
// printed inventories, by name and by a connector's declaration.
func TestIsSecretKey(t *testing.T) {
	token := connectors.Field{Name: "vault_token", Type: "string", Doc: "a token", Secret: true}
	reg := connectors.NewRegistry(testFactory{scheme: "vault", fields: []connectors.Field{token, field("vault_addr")}})
	for _, c := range []struct {
		key          string
		byName, used bool // connectors.IsSecretKey, reg.IsSecretKey
	}{
		{"sudo_password", true, true},
		{"ssh_password", true, true},
		{"ssh_key_password", true, true},
		{"db_password", true, true},
		{"gpg_passphrase", true, true},
		{"vault_token", false, true}, // declared Secret
		{"vault_addr", false, false},
		{"role", false, false},
		{"ssh_user", false, false},
	} {
		if got := connectors.IsSecretKey(c.key); got != c.byName {
			t.Errorf("IsSecretKey(%q) = %v, want %v", c.key, got, c.byName)
		}
		if got := reg.IsSecretKey(c.key); got != c.used {
			t.Errorf("Registry.IsSecretKey(%q) = %v, want %v", c.key, got, c.used)
		}
	}
	var none *connectors.Registry
	if !none.IsSecretKey("sudo_password") || none.IsSecretKey("vault_token") {
		t.Errorf("a nil Registry applies the name rule only")
	}
}
