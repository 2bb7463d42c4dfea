// Package builtins implements the Starlark builtins of deploy scripts:
// shell, put, get, template, fact and quote, plus the per-host state they
// share (Host: connector, data, control defaults, fact cache, events).
//
// Each builtin is declared once as a Spec next to its implementation; the
// Spec's parameters drive both argument unpacking and the documentation.
// Change detection and dry-run live here, once: an operation probes the
// host (probes run also under dry-run and never count as changes), decides
// what would change, and only then changes it. Operations return a frozen
// struct with .changed and .ok (shell adds .stdout, .stderr, .exit_code).
//
// Choices a pyinfra or Ansible user may want spelled out:
//   - Relative local paths (put src=, template src=, get dest=) resolve
//     against the directory of the .star file making the call; for stdlib
//     functions, against the user's file that called them.
//   - put and template need an absolute dest. A new file gets mode 0644; an
//     existing file keeps its mode and (under sudo/su/doas) its owner unless
//     mode=, user= or group= say otherwise.
//   - Without privilege, put streams through Connector.Put (a temporary file
//     in the destination directory renamed over dest); with user= or group=
//     it uploads to a temporary name, chowns and chmods that, and renames it
//     last, so a failed chown (an unknown user) leaves the old file. With
//     sudo, su or doas, the content streams on stdin into a mktemp file in
//     the destination directory, created, chown-ed, chmod-ed and renamed by
//     the privileged user; it is removed on failure.
//   - Temporary files are named .star-deploy-<run id>-<name>.<random>, 0600
//     from creation. A connection lost mid-upload can leave one; the probe
//     put and template make of dest also removes, once per directory and
//     privilege per run, the temporary files of other runs there that are
//     regular files older than this run (see connectors.SweepScript; judged
//     on the host's clock, so clock skew does not matter). --dry removes
//     nothing.
//   - sudo runs `sudo -H -n`: it never prompts. With a sudo password (host
//     data sudo_password, which --sudo-password sets), it runs `sudo -H -S`
//     behind a random prompt instead, and this package feeds the password
//     on sudo's stdin when that prompt appears, for every connector
//     (exec.go); the password never reaches argv, output or errors.
//   - shell() creates=/unless= that say the work is done give status
//     "skipped"; a shell that runs is "changed". Any shell that ran drops
//     the host's cached facts; put/template/get drop the facts of their path.
//
// Predeclared also replaces Starlark's own builtins that walk or copy whole
// values (sorted, str, list, ...) with versions that stop when the thread's
// context is done and refuse to copy more than MaxElements items; the re
// builtins search long strings in steps for the same reason (universe.go,
// regex.go).
//
// This package must not import runtime or a concrete connector.
package builtins
