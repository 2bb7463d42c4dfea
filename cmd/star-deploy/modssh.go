package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/modules"
)

// gitStderr bounds what an error keeps of git-upload-pack's standard
// error (its head and tail).
const gitStderr = 8 << 10

// gitSSH returns how git+ssh:// modules are fetched: git-upload-pack runs
// on the repository's host through the SSH connector, opened as the host
// @ssh/[USER@]HOST[:PORT] of a deploy is, so that ~/.ssh/config (Host,
// Match, Include, HostName, User, Port, IdentityFile, ProxyJump,
// StrictHostKeyChecking, ...), known_hosts and the agent apply as they do
// to a deploy host; nil when there is no SSH connector.
//
// Each command gets an SSH session of its own (ssh_persistent_shell=false):
// the pack streams through the session's standard input and output as
// `ssh HOST git-upload-pack PATH` streams it, with no shell in between.
func (f *flags) gitSSH() modules.SSHRunner {
	reg := f.registry
	if reg == nil {
		return nil
	}
	factory, ok := reg.Lookup("ssh")
	if !ok {
		return nil
	}
	return func(ctx context.Context, host, command string, stdin io.Reader, stdout io.Writer) error {
		t, err := reg.Target("@ssh/"+host, map[string]string{"ssh_persistent_shell": "false"})
		if err != nil {
			return err
		}
		conn, err := factory.Open(ctx, t)
		if err != nil {
			return err
		}
		defer conn.Close()
		res, err := conn.Run(ctx, connectors.Command{Script: command, Stdin: stdin, Stdout: stdout, StreamOnly: true, MaxOutput: gitStderr})
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("%s on %s: exit status %d: %s", command, t.Name, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
		}
		return nil
	}
}
