"""Builds a tiny pure-Python wheel, offline, with the standard library only.

Usage: python3 mkwheel.py [--app] DIR NAME VERSION [REQUIREMENT...]
Writes DIR/<name>-VERSION-py3-none-any.whl, whose metadata requires the
REQUIREMENTs, and prints its path. Its package prints nothing; with --app its
module has a main() that prints NAME and VERSION, and a console script NAME
runs it: pipx installs only packages that bring a command.
"""

import base64
import hashlib
import re
import sys
import zipfile

args = sys.argv[1:]
app = args[:1] == ["--app"]
if app:
    args = args[1:]
out, name, version = args[:3]
requires = args[3:]
norm = re.sub(r"[-_.]+", "_", name).lower()
info = f"{norm}-{version}.dist-info"
module = f"VERSION = {version!r}\n"
if app:
    module += f"\n\ndef main():\n    print({name!r}, VERSION)\n"
files = {
    f"{norm}/__init__.py": module,
    f"{info}/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s"
    % (name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: mkwheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
if app:
    files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{name} = {norm}:main\n"
path = f"{out}/{norm}-{version}-py3-none-any.whl"
record = []
with zipfile.ZipFile(path, "w") as z:
    for n, text in files.items():
        data = text.encode()
        z.writestr(n, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{n},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
print(path)
