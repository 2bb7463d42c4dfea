// Package all builds the registry of the connectors built into star-deploy
// (restic's backend/all). Programs that want every built-in connector call
// Registry; embedders that want fewer build their own connectors.Registry
// from the packages they choose.
//
// This package must not use init() or hold package-level state, and must
// not be imported by the runtime, the builtins or a connector.
package all
