package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRegexpsCompileLazily keeps regular expressions out of start-up: a
// package-level regexp.MustCompile runs at init, in every star-deploy
// process and every embedder, whether the pattern is used or not (the
// 20 of them once cost 0.5 ms of a 13 ms run). Such a pattern is written
// sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(...) }).
// Since a lazy pattern only fails when first used, the test compiles
// every literal pattern given to regexp.MustCompile outside tests.
func TestRegexpsCompileLazily(t *testing.T) {
	top, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	root := strings.TrimSpace(string(top))
	patterns := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					if isMustCompile(v) {
						t.Errorf("%s: a package-level regexp.MustCompile compiles at every start: wrap it in sync.OnceValue", fset.Position(v.Pos()))
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isMustCompile(call) || len(call.Args) != 1 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			expr, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Errorf("%s: %v", fset.Position(lit.Pos()), err)
				return true
			}
			patterns++
			if _, err := regexp.Compile(expr); err != nil {
				t.Errorf("%s (%s): %v", fset.Position(lit.Pos()), rel, err)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if patterns == 0 {
		t.Fatal("found no regexp.MustCompile pattern: the walk is broken")
	}
}

// isMustCompile reports whether e is a call of regexp.MustCompile.
func isMustCompile(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "regexp" && sel.Sel.Name == "MustCompile"
}
