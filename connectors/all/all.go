package all

import (
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/chroot"
	"github.com/star-deploy/star-deploy/connectors/docker"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/connectors/ssh"
	"github.com/star-deploy/star-deploy/connectors/terraform"
)

// Options hold what connectors need from the program that runs them.
type Options struct {
	// Prompt asks the person at the terminal for a secret; nil when there
	// is no terminal.
	Prompt func(question string) (string, error)
	// Warn receives warnings meant for that person; nil drops them.
	Warn func(msg string)
}

// Registry returns a new registry holding every built-in connector. At most
// one Options value is used.
func Registry(opts ...Options) *connectors.Registry {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	sf := ssh.NewFactory(ssh.Options{Prompt: o.Prompt, Warn: o.Warn})
	return connectors.NewRegistry(
		local.NewFactory(),
		chroot.NewFactory(),
		sf,
		ssh.NewDockerSSHFactory(sf),
		docker.NewFactory(docker.Options{Warn: o.Warn}),
		terraform.NewFactory(),
		docker.NewPodmanFactory(docker.Options{Warn: o.Warn}),
	)
}
