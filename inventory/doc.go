// Package inventory turns what the user names on the command line into the
// list of hosts a deploy runs on, with each host's groups and data.
//
// Load takes one of four kinds of inventory: an inventory.star file (a
// name ending in .star), an Ansible dynamic inventory script (an
// executable file), an Ansible inventory (a name ending in .ini, .yml,
// .yaml or .cfg, or any other existing regular file), or a host spec.
//
// # Host specs
//
// A host spec is one host name or a comma-separated list of them:
//
//	@local              this machine
//	@ssh/db1, db1       SSH (a bare name means SSH)
//	@docker/web         a Docker container or image
//	@local,@docker/a    several hosts
//
// Parse reads a spec. It does no I/O and knows no connector: whether a
// scheme exists and what its address means is decided later by
// connectors.Registry.Target. An inventory file must be the whole spec, not
// an item of a list.
//
// # inventory.star
//
// LoadStar reads pyinfra's inventory.py written in Starlark. Each
// top-level list (or tuple) is a group; names starting with _ are private
// helpers. An item is a host name or a (name, {data}) pair, and a host may
// be in several groups, as long as its data does not conflict. Beside the
// file, group_data/all.star and group_data/GROUP.star set data: each
// top-level name is a key; a file for a group that does not exist is an
// error. A host's data is, weakest first: all, its groups (the group
// defined first in the file wins), its own data. The file cannot load()
// modules, and its run is bounded in steps.
//
// # Ansible inventories
//
// LoadAnsible reads an Ansible inventory file so that a migrating user can
// point star-deploy at what they have. Files ending in .yml, .yaml or
// .json are YAML, .ini and .cfg are INI; another file is YAML when it
// parses as a YAML mapping, else INI.
//
// INI: hosts before the first section are ungrouped; [GROUP] lists hosts,
// [GROUP:vars] sets key=value variables, [GROUP:children] lists child
// groups, one per line. Full-line comments start with # or ;, and an
// unquoted # after whitespace starts a trailing comment. A host line is
// split into words as a POSIX shell would (as Ansible's shlex does), so
// values with spaces are quoted: web1 motd="hello world". A child group,
// and a group given :vars, must have a [GROUP] or [GROUP:children] section
// somewhere in the file, as Ansible requires.
//
// INI values are typed more simply than Ansible's, which evaluates inline
// host variables as Python literals and keeps :vars values as strings.
// Here both are typed the same way, so that an INI inventory and its YAML
// translation give the same data: unquoted true or false (any case) is a
// bool, an unquoted decimal integer without a leading zero an int64, and
// anything else a string, without its quotes (so "42" and 0644 stay
// strings). Lists, dicts and floats in INI values are strings; write them
// in YAML, e.g. in group_vars/.
//
// YAML: the top level maps group names (usually all) to groups; a group
// has hosts: (host names mapped to their variables, or to nothing),
// children: (nested groups, recursively) and vars:. Anchors, aliases and
// merge keys work; as in Ansible's YAML 1.1, unquoted yes/no/on/off are
// bools. Any other key in a group, or a value of the wrong shape, is an
// error naming file:line (Ansible only warns and skips it).
//
// In both formats a host name may be a range, expanded as Ansible does:
// web[01:03] (zero-padded when the beginning is), db-[a:c], node[0:8:2]
// with a step, and several ranges in one name. A :PORT suffix
// (web1:2222) sets ansible_port.
//
// Beside the inventory file, host_vars/HOST and group_vars/GROUP (and
// group_vars/all) set variables like Ansible's host_group_vars plugin: the
// first of NAME, NAME.yml, NAME.yaml, NAME.json that exists is read, and
// when it is a directory, every such file in it, recursively, in sorted
// order (hidden files skipped). Each file is a YAML mapping. Files for
// hosts or groups that are not in the inventory are ignored, as Ansible
// ignores them.
//
// Groups and precedence. Entry.Groups lists every group a host is in,
// directly or through children, except all and ungrouped, in the order of
// Inventory.Groups: the order in which the file first names each group.
// Group.Hosts holds the hosts of the group and of its descendants, in host
// order, and Group.Pos is where the group is defined. A host's variables
// are merged in Ansible's default order, weakest first: the inventory's
// all vars; the inventory's group vars; group_vars/all; group_vars/GROUP;
// the inventory's host vars; host_vars/HOST. Within each step groups are
// ordered by depth (parents before children), then ansible_group_priority
// (from the inventory file, default 1), then name, and the later one wins:
// a child group wins over its parent, and of two groups at the same depth
// the one later in alphabetical order wins. A host named several times
// takes the later values. Values replace each other whole: mappings are
// not merged (Ansible's default hash_behaviour=replace).
//
// Connection variables. After the merge each host is mapped to a
// star-deploy host. The name stays the Ansible inventory name, so that
// output shows what Ansible showed, and ansible_host goes to ssh_hostname;
// the name is also kept in data as inventory_hostname. By ansible_connection:
//
//	ssh, paramiko, smart (or unset)  the host's name (SSH)
//	local                            @local
//	docker, docker_api               @docker/CONTAINER, CONTAINER being
//	                                 ansible_host (or ansible_docker_host)
//	                                 or else the inventory name
//
// and any other connection is an error. Two hosts that map to the same
// star-deploy host (two local ones, say) are an error. Then:
//
//	ansible_host, ansible_ssh_host              ssh_hostname
//	ansible_port, ansible_ssh_port              ssh_port
//	ansible_user, ansible_ssh_user              ssh_user (docker_user for docker)
//	ansible_password, ansible_ssh_pass,
//	  ansible_ssh_password                      ssh_password (secret)
//	ansible_private_key_file,
//	  ansible_ssh_private_key_file              ssh_key
//	ansible_timeout, ansible_ssh_timeout        ssh_connect_timeout
//	ansible_ssh_retries                         ssh_connect_retries
//	ansible_host_key_checking=false,
//	  ansible_ssh_host_key_checking=false       ssh_strict_host_key_checking=no
//	                                            (true keeps star-deploy's
//	                                            default, accept-new)
//	ansible_become (bool)                       sudo, or doas, or su_user
//	                                            (by ansible_become_method:
//	                                            sudo, doas, su; another
//	                                            method with become on is an
//	                                            error)
//	ansible_become_user                         sudo_user, doas_user or
//	                                            su_user, only when become
//	                                            is on (star-deploy's
//	                                            sudo_user implies sudo)
//	ansible_become_password,
//	  ansible_become_pass, ansible_sudo_pass    sudo_password (secret)
//
// The SSH keys apply to SSH hosts only. Connector keys hold strings
// (ssh_port "2222"), as the connectors read them; sudo is a bool. When
// the inventory sets a star-deploy key itself (ssh_user) as well as its
// Ansible variable, the one with the stronger precedence wins. Secrets
// are kept as data (star-deploy redacts keys containing "password") and
// are never quoted in errors.
//
// Every other ansible_* variable is dropped from the data:
// ansible_connection and ansible_group_priority are used as described,
// and those with no star-deploy equivalent are ignored, among them
// ansible_python_interpreter, ansible_shell_type, ansible_shell_executable,
// ansible_ssh_common_args and ansible_ssh_extra_args (put ProxyJump and
// other options in ~/.ssh/config, or use ssh_proxy_jump),
// ansible_become_flags and ansible_become_exe. All other variables pass
// through as host data. Because star-deploy's data keys have meanings
// (ssh_*, docker_* and the control keys such as sudo, env, timeout), an
// Ansible role variable of such a name (docker_packages, env) is read as
// star-deploy data; the run then refuses or applies it, naming file:line.
//
// Dynamic inventory scripts. An executable regular file (one named
// .ini, .cfg, .yml, .yaml or .json only when it starts with #!) is an
// Ansible dynamic inventory script: LoadAnsibleScript runs it with --list
// and reads its JSON as Ansible's script plugin does (see there), then
// resolves it as above, with host_vars/ and group_vars/ beside the script.
//
// Expansion. Inventory.Expand replaces a host that stands for many (a
// Docker filter, @terraform) by the hosts a caller-supplied function lists
// for it; the CLI asks connectors.Registry.Expand. This package knows no
// connector and runs no expansion itself.
//
// Not supported: inventory directories and several inventory sources,
// inventory plugins (keyed_groups, constructed), TOML
// inventories, ansible-vault (an encrypted file or !vault value is an
// error that says so), Jinja2 templates in values (kept as text),
// group_vars beside a playbook, IPv6 addresses with a port in a host
// name (use ansible_host and ansible_port), and Ansible's implicit
// localhost.
//
// Errors name file:line (the file alone when the whole file is at fault)
// and say what to change.
//
// Parse does no I/O; LoadStar and LoadAnsible only read files; Load and
// LoadAnsibleScript also run a dynamic inventory script, until ctx ends. This
// package is a leaf: it must not import any other star-deploy package, and
// it never connects to a host.
package inventory
