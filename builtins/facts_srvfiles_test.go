package builtins

import (
	"os"
	"reflect"
	"testing"
)

func TestParseLsattr(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("testdata/facts/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name, out string
		want      []string
	}{
		{"debian12 +dA", read("lsattr-debian12.txt"), []string{"d", "A", "e"}},
		{"debian12 +ia", read("lsattr-immutable-debian12.txt"), []string{"i", "a", "e"}},
		{"none", "---------------------- /x\n", []string{}},
		{"a space in the path", "----i----------------- /a b\n", []string{"i"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseLsattr(c.out)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("parseLsattr(%q) = %q, want %q", c.out, got, c.want)
			}
		})
	}
	for _, bad := range []string{"", "lsattr: Operation not supported While reading flags on /x\n", "--?-- /x"} {
		if got, err := parseLsattr(bad); err == nil {
			t.Errorf("parseLsattr(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseGitConfigList(t *testing.T) {
	b, err := os.ReadFile("testdata/facts/git-config-local-debian12.bin")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"core.repositoryformatversion": {"0"},
		"core.filemode":                {"true"},
		"core.bare":                    {"false"},
		"core.logallrefupdates":        {"true"},
		"remote.Origin.url":            {"/srv/git/app.git"},
		"remote.Origin.fetch":          {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"},
		"user.name":                    {"Anon E. Mouse"},
		"alias.lg":                     {"log\n--oneline"},
		"x.flag":                       {""},
	}
	if got := parseGitConfigList(string(b)); !reflect.DeepEqual(got, want) {
		t.Errorf("parseGitConfigList = %q\nwant %q", got, want)
	}
	if got := parseGitConfigList(""); len(got) != 0 {
		t.Errorf("parseGitConfigList(\"\") = %q, want empty", got)
	}
}
