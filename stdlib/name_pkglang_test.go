package stdlib_test

import "maps"

// The operations of npm.star, gem.star, pipx.star, snap.star and
// flatpak.star, called with name = on a fake host that has none of the
// tools' packages installed.
func init() {
	none := map[string]string{}
	maps.Copy(nameCalls, map[string]nameCall{
		"npm.packages":     {args: `"typescript"`, fake: none},
		"gem.packages":     {args: `"rake"`, fake: none},
		"pipx.packages":    {args: `"black"`, fake: none},
		"snap.package":     {args: `"hello-world"`, fake: none},
		"flatpak.packages": {args: `"org.videolan.VLC"`, fake: none},
	})
}
