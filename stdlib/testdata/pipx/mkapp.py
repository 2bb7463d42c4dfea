"""Builds a tiny pure-Python wheel with one command, offline, with the standard library only.

Usage: python3 mkapp.py DIR NAME VERSION
Writes DIR/<name>-VERSION-py3-none-any.whl and prints its path. The wheel's
module prints its name and version, and its console script NAME runs it: pipx
installs only packages that bring a command (the wheels of
../pip/mkwheel.py bring none).
"""

import base64
import hashlib
import re
import sys
import zipfile

out, name, version = sys.argv[1:4]
norm = re.sub(r"[-_.]+", "_", name).lower()
info = f"{norm}-{version}.dist-info"
files = {
    f"{norm}/__init__.py": f"VERSION = {version!r}\n\n\ndef main():\n    print({name!r}, VERSION)\n",
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: mkapp\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    f"{info}/entry_points.txt": f"[console_scripts]\n{name} = {norm}:main\n",
}
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
