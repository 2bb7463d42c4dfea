# Run as root after 30-git.star.
main=$(git -C /srv/git/app.git rev-parse main)
test "$main" = 199fc73ede05006137e25ebd3368ab1e4f5278a5

# As root, following main.
test "$(git -C /srv/app rev-parse HEAD)" = "$main"
test "$(git -C /srv/app symbolic-ref --short HEAD)" = main
test "$(git -C /srv/app config remote.origin.url)" = /srv/git/app.git
test "$(cat /srv/app/README)" = two
test -z "$(git --no-optional-locks -C /srv/app status --porcelain)"

# As app: everything belongs to app:www-data, and app can use it (without
# writing the index, which would add a file of group app).
test -z "$(find /srv/app-user \( ! -user app -o ! -group www-data \) -print -quit)"
test "$(su app -c 'git -C /srv/app-user rev-parse HEAD')" = "$main"
test -z "$(su app -c 'git --no-optional-locks -C /srv/app-user status --porcelain')"

# Pinned to the first commit, detached.
test "$(git -C /srv/app-pinned rev-parse HEAD)" = 4b387ece7b9624c5eb5ad15615532049558a5936
if git -C /srv/app-pinned symbolic-ref -q HEAD; then exit 1; fi
test "$(cat /srv/app-pinned/README)" = one

# Over SSH, with the host key that ssh_keyscan added.
test "$(git -C /srv/app-ssh rev-parse HEAD)" = "$main"
test "$(git -C /srv/app-ssh config remote.origin.url)" = ssh://app@localhost/srv/git/app.git
ssh-keygen -F localhost -f /root/.ssh/known_hosts >/dev/null
