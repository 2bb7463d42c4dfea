package stdlib_test

import "maps"

// The postgresql operations run on a fake host, whose psql answers with no
// rows: this machine may have a psql without a server.
func init() {
	noServer := map[string]string{}
	maps.Copy(nameCalls, map[string]nameCall{
		"postgresql.sql":      {args: `"SELECT 1"`, fake: noServer},
		"postgresql.role":     {args: `"probe", password = "x"`, fake: noServer},
		"postgresql.database": {args: `"probe", owner = "probe"`, fake: noServer},
		"postgresql.dump":     {args: `"/tmp/probe.sql", database = "probe"`, fake: noServer},
		"postgresql.restore":  {args: `"/tmp/probe.sql", database = "probe", unless = "SELECT 1"`, fake: noServer},
	})
}
