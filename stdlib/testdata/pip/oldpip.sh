# Plays a pip without `install --dry-run` (pip < 22.2, as on Debian 11 and
# Ubuntu 22.04) from output captured from pip 23.0.1: list-freeze.txt is
# `pip list --format=freeze` of a virtualenv, no-such-option.txt is what pip
# prints for an option it does not know. Other commands are appended to the
# file calls next to this script and succeed.
d=$(dirname "$0")
for a in "$@"; do
  if [ "$a" = --dry-run ]; then
    cat "$d/no-such-option.txt" >&2
    exit 2
  fi
done
case " $* " in
*" list "*) cat "$d/list-freeze.txt" ;;
*) echo "$*" >> "$d/calls" ;;
esac
