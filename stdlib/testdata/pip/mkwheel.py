"""Builds a tiny pure-Python wheel, offline, with the standard library only.

Usage: python3 mkwheel.py DIR NAME VERSION [REQUIREMENT...]
Writes DIR/<name>-VERSION-py3-none-any.whl, whose package prints nothing and
whose metadata requires the REQUIREMENTs, and prints its path.
"""

import base64
import hashlib
import re
import sys
import zipfile

out, name, version = sys.argv[1:4]
requires = sys.argv[4:]
norm = re.sub(r"[-_.]+", "_", name).lower()
info = f"{norm}-{version}.dist-info"
files = {
    f"{norm}/__init__.py": f"VERSION = {version!r}\n",
    f"{info}/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s"
    % (name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: mkwheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
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
