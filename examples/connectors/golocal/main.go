// Command star-deploy-connector-golocal is the smallest connector plugin
// written in Go: the local connector, served as @golocal through
// connectors/plugin. Build it onto PATH and it is a connector:
//
//	go build -o ~/bin/star-deploy-connector-golocal ./examples/connectors/golocal
//	star-deploy @golocal/here exec -- uname -a
//	star-deploy connector test @golocal/here
//
// A real plugin implements connectors.Factory and connectors.Connector for
// its own transport; plugin.Serve does the protocol.
package main

import (
	"context"
	"fmt"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/connectors/plugin"
)

func main() { plugin.Serve(factory{}) }

// factory provides @golocal/NAME: this machine, under the name NAME.
type factory struct{}

func (factory) Scheme() string { return "golocal" }

func (factory) Doc() string {
	return "This machine, as @local, but through a plugin process (examples/connectors/golocal). The address is only a name: @golocal/here."
}

func (factory) Fields() []connectors.Field { return nil }

func (factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr == "" {
		return connectors.Target{}, fmt.Errorf("@golocal needs a name: @golocal/here")
	}
	return connectors.Target{Name: "@golocal/" + addr, Addr: addr}, nil
}

func (factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	return local.NewFactory().Open(ctx, connectors.Target{Name: t.Name})
}
