# Run as root after 80-langpkgs.star.
[ "$(hello-star)" = "hello-star 1.0.0" ]
npm ls -g --depth=0 hello-star@1.0.0 >/dev/null
(cd /srv/node-app && npm ls --depth=0 hello-star@1.0.0 >/dev/null)
grep -q '"hello-star": "file:' /srv/node-app/package.json
gem list --local hello-star | grep -qx 'hello-star (1.1.0, 1.0.0)'
gem list --local greet-star | grep -qx 'greet-star (0.1.0)'
ruby -e 'require "hello-star"; exit(HelloStar::VERSION == "1.1.0")'
[ "$(/root/.local/bin/tool-star)" = "tool-star 1.1" ]
[ "$(/usr/local/bin/Odd_Tool.pkg)" = "Odd_Tool.pkg 2.0" ]
[ -d /opt/pipx/venvs/odd-tool-pkg ]
flatpak list --columns=application,branch,origin | grep -qx "$(printf 'org.star.Hello\tstable\tstar-test')"
flatpak info org.star.Hello >/dev/null
