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
	})
}
