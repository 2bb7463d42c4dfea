// Package conntest is the conformance suite every connectors.Connector
// passes (restic's backend/test): exit codes, separated and large output,
// standard input, live output, Render's env and chdir on the real shell,
// timeouts and cancellation that leave no process behind, streaming and
// atomic Put and Get, file modes and missing files.
//
// A connector's test calls Suite with a function that opens a connection
// and names an empty scratch directory on the target host.
//
// This package must not import a concrete connector, the runtime or
// Starlark, and must not be imported by non-test code.
package conntest
