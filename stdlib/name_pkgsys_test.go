package stdlib_test

import "maps"

// The package-manager operations of issue 12 (apt, dnf, yum, zypper,
// pacman), for TestEveryOperationTakesName.
func init() {
	maps.Copy(nameCalls, map[string]nameCall{
		"apt.deb":          {args: `tmp + "/probe.deb"`},
		"apt.ppa":          {args: `"ppa:star-deploy/probe"`},
		"apt.upgrade":      {},
		"apt.dist_upgrade": {},
		"dnf.repo":         {args: `"probe", baseurl = "https://example.invalid/el9"`},
		"dnf.rpm":          {args: `tmp + "/probe.rpm"`},
		"dnf.key":          {args: `tmp + "/probe.asc", keyid = "621E9F35"`},
		"yum.repo":         {args: `"probe", baseurl = "https://example.invalid/el7"`},
		"yum.rpm":          {args: `tmp + "/probe.rpm"`},
		"yum.key":          {args: `tmp + "/probe.asc", keyid = "352C64E5"`},
		"zypper.packages":  {args: `"curl"`},
		"zypper.repo":      {args: `"probe", baseurl = "https://example.invalid/leap"`},
		"pacman.packages":  {args: `"curl"`},
		"pacman.update":    {},
		"pacman.upgrade":   {},
	})
}
