package stdlib_test

import "maps"

// dockerHost is a fake host whose Docker engine has nothing yet: every
// docker inspect probe prints nothing.
var dockerHost = map[string]string{"ids=$(docker ": ""}

func init() {
	maps.Copy(nameCalls, map[string]nameCall{
		"docker.container": {args: `"probe-ctr", image = "probe/app:1"`, fake: dockerHost},
		"docker.image":     {args: `"probe/app:1"`, fake: dockerHost},
		"docker.volume":    {args: `"probe-vol"`, fake: dockerHost},
		"docker.network":   {args: `"probe-net"`, fake: dockerHost},
	})
}
