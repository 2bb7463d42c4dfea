package all

import (
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
)

// Registry returns a new registry holding every built-in connector.
func Registry() *connectors.Registry {
	return connectors.NewRegistry(
		local.NewFactory(),
		// ssh.NewFactory() and docker.NewFactory() join here when they exist.
	)
}
