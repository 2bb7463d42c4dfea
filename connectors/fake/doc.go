// Package fake is an in-memory connectors.Connector for engine tests,
// benchmarks and previews: commands get scripted responses, files live in a
// map, and every command and upload is recorded for assertions.
//
// A fake runs nothing: it must not start processes, touch the file system
// or the network, and it must not import Starlark or another connector.
package fake
