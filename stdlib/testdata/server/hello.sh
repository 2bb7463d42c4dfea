#!/bin/sh
# Run by server.script in stdlib/testdata/debian/20-server.star: records its
# arguments and who ran it in the file it is given, and says so.
set -eu
mkdir -p "$(dirname "$1")"
printf 'hello from %s, args: %s\n' "$(id -un)" "$*" > "$1"
echo "wrote $1"
