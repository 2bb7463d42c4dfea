// Package conntest is the conformance suite every connectors.Connector
// passes (restic's backend/test): exit codes, separated and large output,
// standard input, live output, Render's env and chdir on the real shell,
// timeouts and cancellation that leave no process behind, streaming and
// atomic Put and Get, file modes and missing files.
//
// A connector's Go test calls Suite with a function that opens a
// connection and names an empty scratch directory on the target host.
// The same checks run outside `go test` through Run, against a T of its
// own: that is `star-deploy connector test @NAME/ADDR`, with which a
// connector built elsewhere (a plugin) proves itself the way the built-in
// ones do.
//
// This package must not import a concrete connector, the runtime or
// Starlark. Outside tests, only the CLI imports it (internal/archtest).
package conntest
