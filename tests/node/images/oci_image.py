#!/usr/bin/env python3
"""Builds an OCI image archive (or pushes the image to a plain-HTTP registry) from directories and
tar files, with the Python standard library only: no Docker, buildah, umoci or skopeo.

    oci_image.py --name NAME (--out FILE.tar | --push http://127.0.0.1:PORT/REPO:TAG)
                 [--layer DIR_OR_TAR]... [--env K=V]... [--entrypoint JSON_LIST] [--cmd JSON_LIST]
                 [--workdir DIR] [--user USER] [--label K=V]... [--stop-signal SIG] [--mtime EPOCH]
    oci_image.py --from-archive FILE.tar [--label K=V]... --push http://127.0.0.1:PORT/REPO:TAG
                 (pushes an archive this tool wrote, e.g. one of build.sh's, unchanged; with
                 --label, the same layers under a config that also carries these labels)

Prints the manifest digest (sha256:...) on stdout; progress goes to stderr.

The archive is an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/*) that
`ctr -n k8s.io images import FILE` names after the index entry's `io.containerd.image.name`
annotation (NAME in full, e.g. docker.io/llamastack/distribution-starter:0.7.3); the entry also
carries `org.opencontainers.image.ref.name` (the tag).

Layers are UNCOMPRESSED tars: gzip costs about a minute per GiB on 2 cores, and the archive only
travels from this disk to containerd's. A layer is either
  - a directory, tarred deterministically: names sorted, every mtime set to --mtime, numeric
    owners and modes kept (user/group names dropped), hard links kept, sockets skipped, device
    nodes under dev/ dropped (runtimes mount their own /dev). An overlayfs upper directory is a
    valid layer: its whiteouts (character devices 0:0) become `.wh.NAME` entries and its opaque
    directories (xattr trusted.overlay.opaque=y) get a `.wh..wh..opq` entry, as the OCI layer
    spec wants. Extended attributes (file capabilities) are not kept.
  - an existing tar file, used byte for byte as it is.
The same inputs give the same bytes, hence the same digests: a directory is read twice (once to
hash it, once to write it, so no temporary copy), and a change between the two reads is an error.

--push uploads the blobs then the manifest with the OCI distribution API (monolithic blob PUTs,
blobs the registry already has are skipped). Plain HTTP only: it is meant for a loopback test
registry. With --from-archive the manifest and blobs are the archive's, byte for byte, so the
pushed image has the digest that `ctr images import` gives the archive (unless --label adds
labels: then the config and the manifest are new, the layers still the archive's).
"""

import argparse
import hashlib
import http.client
import io
import json
import os
import stat
import sys
import tarfile
import time
import urllib.parse

MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"

# 1980-01-01: the oldest time a zip file can hold, so nothing that zips files from the image fails.
DEFAULT_MTIME = 315532800
CHUNK = 1 << 20


def log(msg):
    print(f"oci_image.py: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"ERROR: {msg}")
    sys.exit(1)


class Sink:
    """A write-only file object that hashes and counts what it is given, and passes it on."""

    def __init__(self, forward=None):
        self.sha = hashlib.sha256()
        self.size = 0
        self.forward = forward

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        if self.forward is not None:
            self.forward(data)
        return len(data)

    def digest(self):
        return "sha256:" + self.sha.hexdigest()


class Blob:
    """Bytes known up front (config, manifest)."""

    def __init__(self, data, media_type):
        self.data = data
        self.media_type = media_type
        self.digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.size = len(data)

    def write_to(self, write):
        write(self.data)


class TarFileLayer:
    """An existing tar file, used as is."""

    def __init__(self, path):
        self.path = path
        self.media_type = MT_LAYER
        sink = Sink()
        self._copy(sink.write)
        self.digest, self.size = sink.digest(), sink.size
        # The diff_id of an uncompressed layer is its digest.
        self.diff_id = self.digest

    def _copy(self, write):
        with open(self.path, "rb") as f:
            while chunk := f.read(CHUNK):
                write(chunk)

    def write_to(self, write):
        sink = Sink(write)
        self._copy(sink.write)
        if sink.digest() != self.digest:
            die(f"{self.path} changed while the image was being written")


class DirLayer:
    """A directory, tarred deterministically (see the module doc). Hashed on creation, re-tarred
    for each write."""

    def __init__(self, path, mtime):
        self.path = path
        self.mtime = mtime
        self.media_type = MT_LAYER
        self.skipped = []
        sink = Sink()
        self._tar(sink)
        self.digest, self.size = sink.digest(), sink.size
        self.diff_id = self.digest

    def write_to(self, write):
        sink = Sink(write)
        self._tar(sink)
        if sink.digest() != self.digest:
            die(f"{self.path} changed while the image was being written")

    def _tar(self, fileobj):
        self.skipped = []
        # Stream mode ("w|") writes straight to the sink, never seeks.
        with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            self._add_children(tar, self.path, "")

    def _add_children(self, tar, dirpath, arcdir):
        # Byte order, not locale order: the same tree gives the same tar on any machine.
        for name in sorted(os.listdir(dirpath), key=os.fsencode):
            full = os.path.join(dirpath, name)
            arc = arcdir + name
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                # An overlayfs whiteout: NAME was deleted from a lower layer.
                tar.addfile(self._plain(arcdir + ".wh." + name))
                continue
            if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and arc.startswith("dev/"):
                self.skipped.append(arc)
                continue
            ti = tar.gettarinfo(full, arcname=arc)
            if ti is None:  # a socket: tar cannot hold it, and it would be stale anyway
                self.skipped.append(arc)
                continue
            ti.mtime = self.mtime
            ti.uname = ti.gname = ""
            if ti.isreg():
                with open(full, "rb") as f:
                    tar.addfile(ti, f)
            else:
                tar.addfile(ti)
            if ti.isdir():
                if _is_opaque(full):
                    # An overlayfs opaque directory: hide everything lower layers had in it.
                    tar.addfile(self._plain(arc + "/.wh..wh..opq"))
                self._add_children(tar, full, arc + "/")

    def _plain(self, arc):
        ti = tarfile.TarInfo(arc)
        ti.mtime = self.mtime
        ti.mode = 0o644
        return ti


def _is_opaque(path):
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def descriptor(blob, annotations=None):
    d = {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}
    if annotations:
        d["annotations"] = annotations
    return d


def split_name(name):
    """docker.io/library/x:1 -> tag "1"; names without a tag get "latest"."""
    last = name.rsplit("/", 1)[-1]
    if "@" in last:
        die(f"--name {name}: give a tag, not a digest")
    return last.split(":", 1)[1] if ":" in last else "latest"


def key_values(items, flag):
    out = {}
    for item in items:
        if "=" not in item:
            die(f"{flag} {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def json_list(text, flag):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        die(f"{flag} {text!r}: not JSON ({e}); give a list such as '[\"/pause\"]'")
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        die(f"{flag} {text!r}: expected a JSON list of strings")
    return value


def build(args):
    layers = []
    for src in args.layer:
        start = time.monotonic()
        if os.path.isdir(src):
            layer = DirLayer(src, args.mtime)
            if layer.skipped:
                log(f"{src}: left out {len(layer.skipped)} device node(s)/socket(s), e.g. {layer.skipped[0]}")
        elif os.path.isfile(src):
            layer = TarFileLayer(src)
        else:
            die(f"--layer {src}: neither a directory nor a file")
        log(f"layer {src}: {layer.size / 2**20:.1f} MiB {layer.digest} ({time.monotonic() - start:.1f} s)")
        layers.append(layer)

    config = {}
    # Env keeps the order given (PATH first, as Docker prints it); duplicates: the last wins.
    env = key_values(args.env, "--env")
    if env:
        config["Env"] = [f"{k}={v}" for k, v in env.items()]
    if args.entrypoint is not None:
        config["Entrypoint"] = json_list(args.entrypoint, "--entrypoint")
    if args.cmd is not None:
        config["Cmd"] = json_list(args.cmd, "--cmd")
    if args.workdir:
        config["WorkingDir"] = args.workdir
    if args.user:
        config["User"] = args.user
    if args.stop_signal:
        config["StopSignal"] = args.stop_signal
    labels = key_values(args.label, "--label")
    if labels:
        config["Labels"] = labels
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(args.mtime))
    image_config = Blob(
        canonical_json(
            {
                "created": created,
                "architecture": "amd64",
                "os": "linux",
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
                "history": [{"created": created, "created_by": "tests/node/images/oci_image.py"}
                            for _ in layers],
            }
        ),
        MT_CONFIG,
    )
    manifest = Blob(
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MT_MANIFEST,
                "config": descriptor(image_config),
                "layers": [descriptor(l) for l in layers],
            }
        ),
        MT_MANIFEST,
    )
    return layers, image_config, manifest


class TarWriter:
    """Writes the outer archive by hand: entries whose content is streamed, size known ahead."""

    def __init__(self, f, mtime):
        self.f = f
        self.mtime = mtime

    def _header(self, name, size, dir_=False):
        ti = tarfile.TarInfo(name)
        ti.mtime = self.mtime
        ti.size = size
        ti.mode = 0o755 if dir_ else 0o644
        ti.type = tarfile.DIRTYPE if dir_ else tarfile.REGTYPE
        self.f.write(ti.tobuf(format=tarfile.PAX_FORMAT))

    def directory(self, name):
        self._header(name, 0, dir_=True)

    def entry(self, name, blob):
        self._header(name, blob.size)
        blob.write_to(self.f.write)
        pad = -blob.size % tarfile.BLOCKSIZE
        self.f.write(b"\0" * pad)

    def close(self):
        self.f.write(b"\0" * (2 * tarfile.BLOCKSIZE))


def write_archive(path, name, layers, image_config, manifest, mtime):
    index = Blob(
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MT_INDEX,
                "manifests": [
                    descriptor(
                        manifest,
                        {
                            "io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": split_name(name),
                        },
                    )
                ],
            }
        ),
        MT_INDEX,
    )
    layout = Blob(canonical_json({"imageLayoutVersion": "1.0.0"}), "")
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as raw, io.BufferedWriter(raw, CHUNK) as f:
            w = TarWriter(f, mtime)
            # Small files first, so a reader learns the names before the big layers.
            w.entry("oci-layout", layout)
            w.entry("index.json", index)
            w.directory("blobs")
            w.directory("blobs/sha256")
            seen = set()
            for blob in [manifest, image_config, *layers]:
                if blob.digest in seen:  # the same layer given twice is stored once
                    continue
                seen.add(blob.digest)
                w.entry("blobs/sha256/" + blob.digest.split(":", 1)[1], blob)
            w.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class Registry:
    """The few calls of the OCI distribution API a push needs, over plain HTTP."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            die(f"--push {url}: expected http://HOST:PORT/REPO:TAG (plain HTTP only)")
        path = u.path.lstrip("/")
        repo, sep, tag = path.rpartition(":")
        if not sep or "/" in tag or not repo:
            die(f"--push {url}: expected http://HOST:PORT/REPO:TAG")
        self.host, self.port = u.hostname, u.port or 80
        self.repo, self.tag = repo, tag

    def _conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=300)

    def _request(self, method, path, body=None, headers=None, ok=(200,)):
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status not in ok:
            die(f"{method} {path}: HTTP {resp.status} {data[:500]!r}")
        return resp, data

    def push_blob(self, blob):
        base = f"/v2/{self.repo}/blobs/"
        conn = self._conn()
        conn.request("HEAD", base + blob.digest)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status == 200:
            log(f"push: {blob.digest} already in the registry")
            return
        resp, _ = self._request("POST", base + "uploads/", headers={"Content-Length": "0"}, ok=(202,))
        location = resp.getheader("Location")
        if not location:
            die("push: the registry gave no upload Location")
        loc = urllib.parse.urlsplit(location)
        query = (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": blob.digest})
        target = f"{loc.path}?{query}"
        # Stream the blob into the request body: layers are not held in memory.
        conn = self._conn()
        try:
            conn.putrequest("PUT", target)
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(blob.size))
            conn.endheaders()
            blob.write_to(conn.send)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 201:
            die(f"push: PUT blob {blob.digest}: HTTP {resp.status} {data[:500]!r}")
        log(f"push: uploaded {blob.digest} ({blob.size} bytes)")

    def push_manifest(self, manifest):
        self._request(
            "PUT",
            f"/v2/{self.repo}/manifests/{self.tag}",
            body=manifest.data,
            headers={"Content-Type": MT_MANIFEST},
            ok=(201,),
        )
        log(f"push: manifest {manifest.digest} as {self.repo}:{self.tag}")


class ArchiveBlob:
    """A blob of an archive written by write_archive, streamed from its tar member."""

    def __init__(self, tar, members, desc):
        self.tar = tar
        self.digest, self.size, self.media_type = desc["digest"], desc["size"], desc["mediaType"]
        self.member = members.get("blobs/sha256/" + self.digest.split(":", 1)[1])
        if self.member is None or self.member.size != self.size:
            die(f"the archive lacks blob {self.digest} ({self.size} bytes)")

    def write_to(self, write):
        sink = Sink(write)
        f = self.tar.extractfile(self.member)
        while chunk := f.read(CHUNK):
            sink.write(chunk)
        if sink.digest() != self.digest:
            die(f"blob {self.digest} in the archive does not match its digest")


def from_archive(path, labels=None):
    """(layers, config, manifest) of an OCI archive with one image, `labels` (a dict) added."""
    tar = tarfile.open(path, mode="r:")
    members = {m.name.lstrip("./"): m for m in tar.getmembers()}
    if "index.json" not in members:
        die(f"{path}: no index.json (not an OCI archive)")
    index = json.load(tar.extractfile(members["index.json"]))
    (mdesc,) = index["manifests"]
    manifest_blob = ArchiveBlob(tar, members, mdesc)
    manifest = Blob(tar.extractfile(manifest_blob.member).read(), mdesc["mediaType"])
    if manifest.digest != mdesc["digest"]:
        die(f"{path}: the manifest does not match its digest")
    m = json.loads(manifest.data)
    layers = [ArchiveBlob(tar, members, d) for d in m["layers"]]
    config_blob = ArchiveBlob(tar, members, m["config"])
    if not labels:
        return layers, config_blob, manifest
    # The labels added to the image's config: a new config blob, hence a new manifest.
    config = json.loads(tar.extractfile(config_blob.member).read())
    config.setdefault("config", {}).setdefault("Labels", {}).update(labels)
    new_config = Blob(canonical_json(config), m["config"]["mediaType"])
    m["config"] = {**m["config"], "digest": new_config.digest, "size": len(new_config.data)}
    return layers, new_config, Blob(canonical_json(m), mdesc["mediaType"])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", help="full image name, e.g. docker.io/org/img:tag (not with --from-archive)")
    p.add_argument("--from-archive", help="push this archive (from --out) instead of building an image")
    p.add_argument("--out", help="the OCI archive to write (FILE.tar)")
    p.add_argument("--push", help="http://HOST:PORT/REPO:TAG of a plain-HTTP registry")
    p.add_argument("--layer", action="append", default=[], help="a directory or tar file; repeat, base first")
    p.add_argument("--env", action="append", default=[], help="K=V; repeat")
    p.add_argument("--entrypoint", help='JSON list, e.g. \'["/pause"]\'')
    p.add_argument("--cmd", help="JSON list")
    p.add_argument("--workdir")
    p.add_argument("--user")
    p.add_argument("--label", action="append", default=[], help="K=V; repeat")
    p.add_argument("--stop-signal", help="e.g. SIGINT: what the runtime sends to stop the container")
    p.add_argument(
        "--mtime",
        type=int,
        default=int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_MTIME)),
        help="mtime of every file in directory layers, and the image's created time "
        "(default: $SOURCE_DATE_EPOCH, else 1980-01-01)",
    )
    args = p.parse_args()
    if args.from_archive:
        if not args.push or args.out or args.name or args.layer or args.env or args.cmd or args.entrypoint:
            die("--from-archive takes --push URL and --label K=V only")
        layers, image_config, manifest = from_archive(args.from_archive, key_values(args.label, "--label"))
    else:
        if not args.name:
            die("--name is required")
        if not args.out and not args.push:
            die("give --out FILE.tar, --push URL, or both")
        layers, image_config, manifest = build(args)
    if args.out:
        start = time.monotonic()
        write_archive(args.out, args.name, layers, image_config, manifest, args.mtime)
        log(f"wrote {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB, {time.monotonic() - start:.1f} s)")
    if args.push:
        reg = Registry(args.push)
        for blob in [*layers, image_config]:
            reg.push_blob(blob)
        reg.push_manifest(manifest)
    print(manifest.digest)


if __name__ == "__main__":
    main()
