// Package archtest enforces the import direction of STYLE.md:
// cmd -> runtime -> builtins -> connectors, connectors never import
// Starlark or each other, inventory and stdlib are leaves (inventory may use
// internal/starvalue, itself a leaf over go.starlark.net), third-party
// transports stay inside their connector, and the CLI and the examples, like
// any embedder, use runtime rather than builtins (in their tests too), and
// outside tests only the CLI imports the conformance suite (connector test).
//
// bundle is a leaf over go.starlark.net/syntax (it follows load()
// statically), internal/jsondata (host data) and the standard library. bundle/signature is the second
// package allowed golang.org/x/crypto/ssh, deliberately: signing a bundle
// with an SSH key and checking it against an allowed_signers file needs SSH
// keys, but no SSH connection, and the CLI (which may not import the SSH
// libraries) should not carry key parsing of its own. It imports nothing
// else of the project, and it alone imports github.com/hiddeco/sshsig.
//
// Two leaves over the standard library serve below those lines:
// internal/jsondata (connectors and inventory read JSON host data through
// it) and internal/spell (connectors' did-you-mean is the scripts').
//
// modules alone imports go-git (remote modules), and nothing of the
// project but the leaves internal/atomicfile and internal/fileowner: the runtime sees it through runtime.RemoteModules, so an
// embedder links go-git only when it asks for remote modules.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/star-deploy/star-deploy"

func TestImportDirection(t *testing.T) {
	format := `{{.ImportPath}}{{range .Imports}} {{.}}{{end}} |{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`
	out, err := exec.Command("go", "list", "-e", "-f", format, mod+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		code, tests, _ := strings.Cut(line, "|")
		fields := strings.Fields(code)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, imp := range fields[1:] {
			if msg := forbidden(pkg, imp); msg != "" {
				t.Errorf("%s imports %s: %s", fields[0], imp, msg)
			}
		}
		for _, imp := range strings.Fields(tests) {
			if msg := embedderImport(pkg, imp); msg != "" {
				t.Errorf("the tests of %s import %s: %s", fields[0], imp, msg)
			}
		}
	}
}

// embedderImport returns why pkg, the CLI or an example, must not import
// imp, or "": they embed the engine as an app does, through runtime.
func embedderImport(pkg, imp string) string {
	embedder := strings.HasPrefix(pkg, "/cmd/") || strings.HasPrefix(pkg, "/examples")
	if embedder && imp == mod+"/builtins" {
		return "the CLI and the examples use runtime's names (sdrt.Control, sdrt.KindOpEnd, ...), not builtins"
	}
	return ""
}

// forbidden returns why pkg (relative to the module, "" for the root) must
// not import imp, or "".
func forbidden(pkg, imp string) string {
	inRepo := strings.HasPrefix(imp, mod)
	rel := strings.TrimPrefix(imp, mod)
	isImpl := func(p string) bool {
		return strings.HasPrefix(p, "/connectors/") && p != "/connectors/all" && p != "/connectors/conntest"
	}
	switch {
	case strings.HasPrefix(imp, "github.com/alecthomas/kong") && pkg != "/cmd/star-deploy":
		return "only cmd/star-deploy imports kong"
	case strings.HasPrefix(imp, "golang.org/x/crypto/ssh") && pkg != "/connectors/ssh" && pkg != "/bundle/signature":
		return "only connectors/ssh (connections) and bundle/signature (signing keys) import x/crypto/ssh"
	case strings.HasPrefix(imp, "github.com/pkg/sftp") && pkg != "/connectors/ssh":
		return "only connectors/ssh imports the SSH libraries"
	case strings.HasPrefix(imp, "github.com/hiddeco/sshsig") && pkg != "/bundle/signature":
		return "only bundle/signature imports the SSH signature format"
	case pkg == "/bundle" && (inRepo && rel != "/internal/jsondata" || !inRepo && !isStd(imp) && imp != "go.starlark.net/syntax"):
		return "bundle is a leaf: it imports only go.starlark.net/syntax, internal/jsondata and the standard library"
	case pkg == "/bundle/signature" && (inRepo || !isStd(imp) && !strings.HasPrefix(imp, "golang.org/x/crypto/ssh") && imp != "github.com/hiddeco/sshsig"):
		return "bundle/signature imports only x/crypto/ssh, hiddeco/sshsig and the standard library"
	case strings.HasPrefix(imp, "github.com/go-git/") && pkg != "/modules":
		return "only modules imports go-git (remote modules); the runtime sees it through runtime.RemoteModules"
	case pkg == "/modules" && inRepo && rel != "/internal/atomicfile" && rel != "/internal/fileowner":
		return "modules imports nothing of the project but internal/atomicfile and internal/fileowner: the runtime sees it through runtime.RemoteModules"
	case (pkg == "/internal/atomicfile" || pkg == "/internal/fileowner") && !isStd(imp):
		return pkg[1:] + " is a leaf: it imports only the standard library"
	case strings.HasPrefix(imp, "github.com/moby/") && pkg != "/connectors/docker":
		return "only connectors/docker imports the Docker client"
	case embedderImport(pkg, imp) != "":
		return embedderImport(pkg, imp)
	case strings.HasPrefix(pkg, "/connectors") && strings.HasPrefix(imp, "go.starlark.net"):
		return "connectors never import Starlark"
	case pkg == "/connectors" && inRepo && rel != "/internal/spell":
		return "connectors is the interface package and imports nothing of the project (but the leaf internal/spell)"
	case isImpl(pkg) && inRepo && rel != "/connectors" && rel != "/internal/jsondata":
		return "a connector imports only the connectors interface package (and internal/jsondata)"
	case rel == "/connectors/conntest" && pkg != "/cmd/star-deploy":
		return "outside tests only the CLI (star-deploy connector test) runs the conformance suite"
	case (pkg == "/inventory" && inRepo && rel != "/internal/starvalue" && rel != "/internal/jsondata") || (pkg == "/stdlib" && inRepo):
		return "inventory and stdlib are leaves (inventory may use internal/starvalue and internal/jsondata)"
	case pkg == "/internal/starvalue" && (inRepo || !isStd(imp) && !strings.HasPrefix(imp, "go.starlark.net/")):
		return "internal/starvalue is a leaf: it imports only go.starlark.net and the standard library"
	case (pkg == "/internal/spell" || pkg == "/internal/jsondata") && !isStd(imp):
		return strings.TrimPrefix(pkg, "/") + " is a leaf: it imports only the standard library"
	case pkg == "/builtins" && (rel == "/runtime" || isImpl(rel) || rel == "/connectors/all"):
		return "builtins sit below runtime and never see a concrete connector"
	case pkg == "/runtime" && (isImpl(rel) || rel == "/connectors/all" || rel == "/stdlib" || strings.HasPrefix(rel, "/cmd")):
		return "runtime gets connectors and the stdlib from its caller"
	}
	return ""
}

func TestForbiddenCatchesViolations(t *testing.T) {
	for _, c := range [][2]string{
		{"/connectors/local", mod + "/builtins"},
		{"/connectors", "go.starlark.net/starlark"},
		{"/builtins", mod + "/runtime"},
		{"/runtime", mod + "/connectors/local"},
		{"/runtime", "github.com/alecthomas/kong"},
		{"/stdlib", mod + "/builtins"},
		{"/inventory", mod + "/builtins"},
		{"/internal/starvalue", mod + "/connectors"},
		{"/internal/spell", "go.starlark.net/starlark"},
		{"/internal/starvalue", "go.yaml.in/yaml/v3"},
		{"/internal/jsondata", mod + "/connectors"},
		{"/connectors/terraform", mod + "/internal/starvalue"},
		{"/connectors", mod + "/internal/starvalue"},
		{"/cmd/star-deploy", mod + "/builtins"},
		{"/examples/embed", mod + "/builtins"},
		{"/runtime", mod + "/connectors/conntest"},
		{"/connectors/plugin", mod + "/connectors/conntest"},
		{"/cmd/star-deploy", "golang.org/x/crypto/ssh"},
		{"/bundle", "golang.org/x/crypto/ssh"},
		{"/bundle", mod + "/runtime"},
		{"/bundle", "go.starlark.net/starlark"},
		{"/bundle/signature", mod + "/bundle"},
		{"/cmd/star-deploy", "github.com/hiddeco/sshsig"},
		{"/runtime", "github.com/go-git/go-git/v5"},
		{"/cmd/star-deploy", "github.com/go-git/go-git/v5/plumbing"},
		{"/modules", mod + "/runtime"},
	} {
		if forbidden(c[0], c[1]) == "" {
			t.Errorf("%s importing %s was allowed", c[0], c[1])
		}
	}
	for _, imp := range []string{"/connectors/all", "/connectors/conntest", "/connectors/plugin"} {
		if msg := forbidden("/cmd/star-deploy", mod+imp); msg != "" {
			t.Errorf("cmd importing %s refused: %s", imp, msg)
		}
	}
	for _, c := range [][2]string{
		{"/inventory", mod + "/internal/starvalue"},
		{"/inventory", mod + "/internal/jsondata"},
		{"/connectors/terraform", mod + "/internal/jsondata"},
		{"/connectors", mod + "/internal/spell"},
		{"/internal/starvalue", "go.starlark.net/starlark"},
		{"/internal/starvalue", "encoding/json"},
		{"/bundle", "go.starlark.net/syntax"},
		{"/bundle", mod + "/internal/jsondata"},
		{"/bundle/signature", "golang.org/x/crypto/ssh"},
		{"/bundle/signature", "github.com/hiddeco/sshsig"},
		{"/cmd/star-deploy", mod + "/bundle/signature"},
		{"/modules", "github.com/go-git/go-git/v5"},
		{"/cmd/star-deploy", mod + "/modules"},
	} {
		if msg := forbidden(c[0], c[1]); msg != "" {
			t.Errorf("%s importing %s refused: %s", c[0], c[1], msg)
		}
	}
}

// isStd reports whether imp is in the standard library: its first element
// has no dot.
func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}
