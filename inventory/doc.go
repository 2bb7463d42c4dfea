// Package inventory turns what the user names on the command line into the
// list of hosts a deploy runs on.
//
// An inventory spec is one host name or a comma-separated list of them:
//
//	@local              this machine
//	@ssh/db1, db1       SSH (a bare name means SSH)
//	@docker/web         a Docker container or image
//	@local,@docker/a    several hosts
//
// Parsing does no I/O and knows no connector: whether a scheme exists and
// what its address means is decided later by connectors.Registry.Target.
// Inventory files (inventory.star: groups and host data) come in a later
// version; a spec ending in ".star" is rejected with an error saying so.
//
// This package is a leaf: it must not import any other star-deploy package.
package inventory
