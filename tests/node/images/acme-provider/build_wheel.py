#!/usr/bin/env python3
"""Builds the acme-infer wheel with the Python standard library, offline and deterministically
(sorted entries, fixed 1980-01-01 times, stored uncompressed): the same sources give the same
bytes, so the image's cache key and layer digest stay stable.

    build_wheel.py OUT_DIR      -> writes OUT_DIR/<name>-<version>-py3-none-any.whl, prints its name

Metadata comes from pyproject.toml's [project]; the package is everything under src/.
"""

import base64
import hashlib
import os
import sys
import tomllib
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCH = (1980, 1, 1, 0, 0, 0)


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: build_wheel.py OUT_DIR")
    out_dir = sys.argv[1]
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    dist = project["name"].replace("-", "_")
    version = project["version"]
    info = f"{dist}-{version}.dist-info"

    files = []  # (archive name, bytes), package files sorted
    src = os.path.join(HERE, "src")
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    files.append((os.path.relpath(path, src).replace(os.sep, "/"), f.read()))
    files.sort()
    top_level = sorted({name.split("/", 1)[0] for name, _ in files})

    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project.get('description', '')}",
    ]
    if "requires-python" in project:
        metadata.append(f"Requires-Python: {project['requires-python']}")
    metadata += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    files += [
        (f"{info}/METADATA", ("\n".join(metadata) + "\n").encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tests/node/images/acme-provider/build_wheel.py\n"
                          b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{info}/top_level.txt", ("\n".join(top_level) + "\n").encode()),
    ]
    record = "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data in files)
    files.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))

    wheel = f"{dist}-{version}-py3-none-any.whl"
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".{wheel}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files:
            zi = zipfile.ZipInfo(name, date_time=EPOCH)
            zi.external_attr = 0o644 << 16
            zi.create_system = 3  # unix, so the mode above is honoured
            zf.writestr(zi, data)
    os.replace(tmp, os.path.join(out_dir, wheel))
    print(wheel)


if __name__ == "__main__":
    main()
