package connectors

import "strings"

// IsSecretKey reports whether the host data key k holds a secret by its
// name: one that contains "password" or "passphrase" (sudo_password,
// ssh_password, ssh_key_password, a script's own db_password). It is the
// rule for keys no connector declares, and every built-in connector's
// Secret fields follow it, so that code without a Registry (the host value
// a script sees) keeps them out too. Registry.IsSecretKey adds the fields
// a registered connector declares Secret. Secrets never appear in
// host.data, events, printed inventories or errors.
func IsSecretKey(k string) bool {
	return strings.Contains(k, "password") || strings.Contains(k, "passphrase")
}

// IsSecretKey reports whether the host data key k holds a secret: a field
// that a registered connector declares Secret, or a key whose name says so
// (the package function IsSecretKey). A nil Registry knows no fields.
func (r *Registry) IsSecretKey(k string) bool {
	if r != nil {
		if f, ok := r.Field(k); ok && f.Secret {
			return true
		}
	}
	return IsSecretKey(k)
}
