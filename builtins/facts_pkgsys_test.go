package builtins

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseAptSourcesDeb822(t *testing.T) {
	got := parseAptSources(captureText(t, "apt_sources-debian12-host.txt"))
	signed := map[string]string{"signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg"}
	file := "/etc/apt/sources.list.d/debian.sources"
	want := []aptSource{
		{"deb", "http://deb.debian.org/debian", "bookworm", []string{"main"}, signed, true, file},
		{"deb", "http://deb.debian.org/debian", "bookworm-updates", []string{"main"}, signed, true, file},
		{"deb", "http://deb.debian.org/debian-security", "bookworm-security", []string{"main"}, signed, true, file},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseAptSourcesOneLineAndDisabled(t *testing.T) {
	got := parseAptSources(captureText(t, "apt_sources-debian12-container.txt"))
	none := map[string]string{}
	local := "/etc/apt/sources.list.d/local.list"
	bp := "/etc/apt/sources.list.d/backports.sources"
	bpOpts := map[string]string{"arch": "amd64 arm64", "signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg"}
	want := []aptSource{
		{"deb", "http://deb.debian.org/debian", "bookworm", []string{"main"}, none, true, "/etc/apt/sources.list"},
		{"deb-src", "http://deb.debian.org/debian", "bookworm", []string{"main", "contrib"}, map[string]string{"arch": "amd64", "trusted": "yes"}, true, local},
		{"deb", "file:/srv/repo", "./", []string{}, none, true, local},
		{"deb", "http://deb.debian.org/debian", "bookworm", []string{"contrib"},
			map[string]string{"signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg,/etc/apt/keyrings/star-deploy-test.asc"}, true,
			"/etc/apt/sources.list.d/star-deploy-contrib.list"},
		{"deb", "http://deb.debian.org/debian", "bookworm-backports", []string{"main"}, bpOpts, false, bp},
		{"deb-src", "http://deb.debian.org/debian", "bookworm-backports", []string{"main"}, bpOpts, false, bp},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseDeb822EmbeddedKey(t *testing.T) {
	// sources.list(5): Signed-By may hold the key itself, continued on
	// lines that start with a space ("." for an empty line).
	body := "==> /etc/apt/sources.list.d/x.sources\nTypes: deb\nURIs: https://example.invalid/apt\nSuites: stable\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n"
	got := parseAptSources(body)
	if len(got) != 1 || !strings.HasPrefix(got[0].Options["signed-by"], "-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nabc") {
		t.Errorf("got %+v", got)
	}
}

// gpgKeys reads gpg --with-colons output: for each "== FILE" section, the
// primary keys as parseKeyring returns them.
func gpgKeys(t *testing.T, out string) []pgpKey {
	var keys []pgpKey
	file, last := "", ""
	for _, line := range strings.Split(out, "\n") {
		if f, ok := strings.CutPrefix(line, "== "); ok {
			file = f
			continue
		}
		f := strings.Split(line, ":")
		switch f[0] {
		case "pub":
			created, err := strconv.ParseInt(f[5], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, pgpKey{KeyID: f[4], Created: created, File: file, UIDs: []string{}, Subkeys: []string{}})
			last = "pub"
		case "sub":
			keys[len(keys)-1].Subkeys = append(keys[len(keys)-1].Subkeys, f[4])
			last = "sub"
		case "fpr":
			if last == "pub" {
				keys[len(keys)-1].Fingerprint = f[9]
			}
		case "uid":
			keys[len(keys)-1].UIDs = append(keys[len(keys)-1].UIDs, f[9])
		}
	}
	return keys
}

func TestParseAptKeysAgainstGPG(t *testing.T) {
	got, err := parseAptKeys(captureText(t, "apt_keys-debian12-container.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := gpgKeys(t, captureText(t, "apt_keys-debian12-gpg-colons.txt"))
	if len(want) < 10 {
		t.Fatalf("the gpg capture has %d keys", len(want))
	}
	byFile := func(ks []pgpKey) map[string]pgpKey {
		m := map[string]pgpKey{}
		for _, k := range ks {
			m[k.File+" "+k.KeyID] = k
		}
		return m
	}
	g, w := byFile(got), byFile(want)
	if !reflect.DeepEqual(g, w) {
		for k, wk := range w {
			if !reflect.DeepEqual(g[k], wk) {
				t.Errorf("%s:\n got  %+v\n want %+v", k, g[k], wk)
			}
		}
		if len(g) != len(w) {
			t.Errorf("got %d keys, gpg lists %d", len(g), len(w))
		}
	}
}

func TestParseKeyringOddInput(t *testing.T) {
	if ks := parseKeyring([]byte("not a key")); len(ks) != 0 {
		t.Errorf("got %+v", ks)
	}
	if ks := parseKeyring([]byte{0x99, 0xff, 0xff}); len(ks) != 0 { // a length past the end
		t.Errorf("got %+v", ks)
	}
	if _, err := parseAptKeys("==> /etc/apt/keyrings/x.gpg\n!!!\n"); err == nil {
		t.Error("bad base64: no error")
	}
}

func TestParseControlFields(t *testing.T) {
	f := parseControlFields(captureText(t, "deb_package-dpkg-deb.txt"))
	if f["Package"] != "star-deploy-hello" || f["Version"] != "1:1.0-2~test" || f["Architecture"] != "all" {
		t.Errorf("got %v", f)
	}
}

func TestParseRpmQuery(t *testing.T) {
	for file, want := range map[string]string{
		"rpm_package-epoch.txt":   `rpm_package(arch = "noarch", epoch = "1", name = "star-deploy-hello", version = "1.0-2.fc39")`,
		"rpm_package-noepoch.txt": `rpm_package(arch = "noarch", epoch = None, name = "star-deploy-hello", version = "1.0-2.fc39")`,
	} {
		v, ok := parseRpmQuery(captureText(t, file))
		if !ok || v.String() != want {
			t.Errorf("%s: got %v %v, want %s", file, v, ok, want)
		}
	}
	if _, ok := parseRpmQuery("error: open of x failed\n"); ok {
		t.Error("an error message parsed")
	}
}

func TestParseRpmKeys(t *testing.T) {
	got := parseRpmKeys(captureText(t, "rpm_keys.txt"))
	want := map[string][2]string{
		"350947f8": {"63cbd015", "Debian Archive Automatic Signing Key (12/bookworm) <ftpmaster@debian.org> public key"},
		"0d6c9793": {"6028124e", "Debian Stable Release Key (11/bullseye) <debian-release@lists.debian.org> public key"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	if got := parseRpmKeys(captureText(t, "rpm_keys-none.txt")); len(got) != 0 {
		t.Errorf("no keys: got %v", got)
	}
}

func TestParseRpmRepos(t *testing.T) {
	repos := parseRpmRepos(captureText(t, "rpm_repos-probe.txt"))
	var ids []string
	for _, r := range repos {
		ids = append(ids, r.ID)
	}
	if want := []string{"fedora", "fedora-source", "star-deploy", "repo-oss"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	for i, want := range []string{
		`rpm_repo(baseurl = None, enabled = True, file = "/etc/yum.repos.d/fedora.repo", gpgcheck = True, gpgkey = "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch", name = "Fedora $releasever - $basearch", options = {`,
		`rpm_repo(baseurl = None, enabled = False, file = "/etc/yum.repos.d/fedora.repo", gpgcheck = True,`,
		`rpm_repo(baseurl = "http://127.0.0.1:8070/el9/ http://127.0.0.1:8071/el9/", enabled = True, file = "/etc/yum.repos.d/star-deploy.repo", gpgcheck = False, gpgkey = None, name = "star-deploy test packages", options = {"baseurl": "http://127.0.0.1:8070/el9/ http://127.0.0.1:8071/el9/", "gpgcheck": "0", "name": "star-deploy test packages"})`,
		`rpm_repo(baseurl = "http://download.opensuse.org/distribution/leap/15.5/repo/oss/", enabled = True, file = "/etc/zypp/repos.d/repo-oss.repo", gpgcheck = None,`,
	} {
		if got := repos[i].value().String(); !strings.HasPrefix(got, want) {
			t.Errorf("%s:\n got  %s\n want %s...", repos[i].ID, got, want)
		}
	}
	if repos[0].Options["metadata_expire"] != "7d" || repos[0].Options["baseurl"] != "" {
		t.Errorf("fedora: %v", repos[0].Options)
	}
}

func TestParsePacmanQ(t *testing.T) {
	got := parsePacmanQ(captureText(t, "pacman_packages-Q.txt"))
	want := map[string]string{"nginx": "1.24.0-1", "pacman": "6.0.2-9", "python": "1:3.11.5-1", "tree": "2.1.1-1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}

// captureText is a capture under testdata/facts, as text.
func captureText(t *testing.T, name string) string { return string(readCapture(t, name)) }
