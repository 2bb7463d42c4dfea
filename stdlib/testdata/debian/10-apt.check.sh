# Runs as root in the container after the real run of 10-apt.star (sh -eu).
for p in tree jq; do
	dpkg -s "$p" | grep -qx 'Status: install ok installed' || { echo "$p is not installed"; exit 1; }
done
if dpkg -s lsb-base 2>/dev/null | grep -q '^Status: install ok'; then
	echo "lsb-base is still installed"; exit 1
fi
tree --version >/dev/null
echo '{"a": 1}' | jq -e '.a == 1' >/dev/null

key=/etc/apt/keyrings/star-deploy-test.asc
[ "$(stat -c '%a %U' "$key")" = "644 root" ] || { echo "bad mode or owner of $key"; exit 1; }
head -1 "$key" | grep -qx -- '-----BEGIN PGP PUBLIC KEY BLOCK-----'

list=/etc/apt/sources.list.d/star-deploy-contrib.list
[ "$(stat -c '%a' "$list")" = 644 ]
[ "$(wc -l <"$list")" = 1 ]
grep -Eq "^deb \[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg,$key\] http\S+ \S+ contrib$" "$list"

# apt fetched the contrib lists with that line, and the stamp that cache_time reads is there.
ls /var/lib/apt/lists | grep -Eq '_dists_[a-z]+_contrib_binary-.*_Packages'
test -f /var/lib/apt/periodic/update-success-stamp
