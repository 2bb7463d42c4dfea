package inventory

import (
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/all"
)

// TestSecretNamesCoverStarDeploys checks that every key star-deploy keeps
// secret (connectors.IsSecretKey, and every field a built-in connector
// declares Secret) is one the inventory never quotes in an error.
func TestSecretNamesCoverStarDeploys(t *testing.T) {
	keys := []string{"sudo_password", "db_password", "key_passphrase", "ansible_become_pass", "ansible_ssh_pass"}
	for _, f := range all.Registry(all.Options{}).Factories() {
		for _, fld := range f.Fields() {
			keys = append(keys, fld.Name)
		}
	}
	reg := all.Registry(all.Options{})
	for _, k := range keys {
		if reg.IsSecretKey(k) && !isSecretName(k) {
			t.Errorf("%s is a secret to star-deploy but isSecretName(%q) = false", k, k)
		}
	}
	for _, k := range []string{"ansible_become_pass", "ansible_ssh_pass", "SSH_PASSWORD"} {
		if !isSecretName(k) {
			t.Errorf("isSecretName(%q) = false", k)
		}
	}
	if connectors.IsSecretKey("role") || isSecretName("role") {
		t.Errorf("role is no secret")
	}
}
