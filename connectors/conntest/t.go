package conntest

import (
	"context"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// T is what the suite needs of a test: the part of testing.TB it uses, with
// a Run whose subtests get a T as well. A *testing.T serves through Suite;
// Run serves outside `go test`, for `star-deploy connector test`.
type T interface {
	Helper()
	Name() string
	Context() context.Context
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	// Run runs fn as the subtest name and reports whether it passed.
	Run(name string, fn func(t T)) bool
}

// Suite runs the conformance suite (Check) as subtests of a Go test.
func Suite(t *testing.T, open func(t *testing.T) (conn connectors.Connector, scratch string)) {
	t.Helper()
	SuiteSkipping(t, open, nil)
}

// SuiteSkipping is Suite with the subtests named in skip left out, each
// with its reason (see Check).
func SuiteSkipping(t *testing.T, open func(t *testing.T) (conn connectors.Connector, scratch string), skip map[string]string) {
	t.Helper()
	Check(goTest{t}, func(t T) (connectors.Connector, string) { return open(t.(goTest).T) }, skip)
}

// goTest is a *testing.T as a T.
type goTest struct{ *testing.T }

func (g goTest) Run(name string, fn func(t T)) bool {
	return g.T.Run(name, func(t *testing.T) { fn(goTest{t}) })
}
