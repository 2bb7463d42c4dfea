package stdlib_test

import "maps"

// aFile is the file fact's answer for an existing one-byte file.
const aFile = "regular file|644|root|root|1\nabc\n"

func init() {
	unitHost := maps.Clone(systemdHost)
	unitHost["p="] = aFile
	maps.Copy(nameCalls, map[string]nameCall{
		"iptables.chain":       {args: `"INPUT", policy = "DROP"`, fake: map[string]string{"command -v iptables-save": ":INPUT ACCEPT [0:0]\n"}},
		"iptables.rule":        {args: `"INPUT", "ACCEPT", protocol = "tcp", destination_port = 22`, fake: map[string]string{}},
		"ufw.rule":             {args: `"allow", to_port = 22, proto = "tcp"`, fake: map[string]string{}},
		"ufw.enabled":          {fake: map[string]string{"command -v ufw": "ENABLED=no\n"}},
		"selinux.boolean":      {args: `"httpd_can_network_connect", "on"`, fake: map[string]string{"command -v getsebool": "httpd_can_network_connect --> off\n"}},
		"selinux.file_context": {args: `"/srv/www", "httpd_sys_content_t"`, fake: map[string]string{}},
		"selinux.port":         {args: `"tcp", 2222, "http_port_t"`, fake: map[string]string{}},
		"ssh.keyscan":          {args: `"db1"`, fake: map[string]string{}},
		"ssh.command":          {args: `"db1", "true"`, fake: map[string]string{}},
		"ssh.upload":           {args: `"db1", "/tmp/a", ssh_keyscan = True`, fake: map[string]string{}},
		"ssh.download":         {args: `"db1", "/tmp/a"`, fake: map[string]string{"p=": aFile}},
		"systemd.unit":         {args: `"probe", content = "[Service]\nExecStart=/bin/true\n"`, fake: unitHost},
	})
}
