package stdlib_test

import "maps"

// The mysql operations run on a fake host whose mysql client answers every
// query with nothing: a server with no databases, accounts or grants (and,
// for mysql.dump, an old dump file).
func init() {
	none := map[string]string{}
	maps.Copy(nameCalls, map[string]nameCall{
		"mysql.sql":        {args: `"SELECT 1"`, fake: none},
		"mysql.user":       {args: `"app", password = "pw", privileges = ["SELECT"]`, fake: none},
		"mysql.database":   {args: `"app", user = "app"`, fake: none},
		"mysql.privileges": {args: `"app", ["SELECT"], database = "app"`, fake: none},
		"mysql.dump":       {args: `"/srv/app.sql", database = "app"`, fake: map[string]string{"p=": "regular file|600|root|root|0\n" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"}},
		"mysql.restore":    {args: `"/srv/app.sql", database = "app"`, fake: none},
	})
}
