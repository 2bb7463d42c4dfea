// Package connectors defines how star-deploy reaches a host: the Factory
// and Connector interfaces, the Target an inventory name parses into, the
// Command and Result of a shell command, declared Capabilities and data
// Fields, an explicit Registry, and Render, the one place that wraps a
// command in sudo/su/doas/env/cd for a POSIX host.
//
// A factory may also be an Expander: an inventory name of its scheme then
// stands for many hosts (a Docker filter, a Terraform output), listed by
// Registry.Expand before anything connects; Registry.Target refuses such
// a name.
//
// This package must not import Starlark or any concrete connector; concrete
// connectors live in sub-packages (local, ssh, docker) and are registered
// explicitly by connectors/all. Any connector proves itself by passing
// connectors/conntest.Suite.
package connectors
