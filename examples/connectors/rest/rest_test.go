// Package rest_test runs the @rest connector plugin, a Python program,
// against a REST server (testserver.py) on 127.0.0.1, through the plugin
// client star-deploy uses: the conformance suite, and its errors.
package rest_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/connectors/plugin"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

const key = "k3y-of-the-test-api"

// startServer starts testserver.py and returns its base URL.
func startServer(t *testing.T) string {
	return sshtest.RESTServer(t, ".", key, "box")
}

func factory(t *testing.T) *plugin.Factory {
	p, err := filepath.Abs(plugin.Prefix + "rest")
	if err != nil {
		t.Fatal(err)
	}
	return plugin.NewFactory(p)
}

func TestConformance(t *testing.T) {
	url := startServer(t)
	f := factory(t)
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		c, err := sshtest.Open(t, connectors.NewRegistry(f), "@rest/box", map[string]string{"rest_url": url, "rest_key": key})
		if err != nil {
			t.Fatal(err)
		}
		return c, t.TempDir()
	})
}

func TestDescribe(t *testing.T) {
	f := factory(t)
	var names []string
	for _, fld := range f.Fields() {
		names = append(names, fld.Name)
		if fld.Name == "rest_key" && !fld.Secret {
			t.Errorf("rest_key is not secret")
		}
	}
	if strings.Join(names, ",") != "rest_url,rest_key,rest_timeout" {
		t.Errorf("fields %q", names)
	}
	tg, err := f.Parse("box", nil)
	if err != nil || tg.Name != "@rest/box" || tg.Addr != "box" {
		t.Errorf("Parse(box) = %+v, %v", tg, err)
	}
	if _, err := f.Parse("", nil); err == nil || !strings.Contains(err.Error(), "@rest needs a resource id") {
		t.Errorf("Parse(\"\") = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	url := startServer(t)
	f := factory(t)
	for _, tt := range []struct {
		addr string
		data map[string]string
		want string
	}{
		{"box", map[string]string{"rest_url": url, "rest_key": "wrong-key-value"}, "the API refused rest_key (401)"},
		{"nobox", map[string]string{"rest_url": url, "rest_key": key}, "connect to resource nobox at " + url + ": no resource 'nobox'"},
		{"box", map[string]string{"rest_url": "ftp://x", "rest_key": key}, "rest_url 'ftp://x': want http://"},
	} {
		tg, err := f.Parse(tt.addr, tt.data)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Open(t.Context(), tg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("open %s %v: %v, want %q", tt.addr, tt.data, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.data["rest_key"]) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
}
