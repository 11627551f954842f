"""``clipviz data fetch NAME``: download a public data set, verified.

Downloads go to :func:`clipviz.datasets.download_dir` (``$CLIPVIZ_DATA`` or
``SETTINGS.data_dir``) under the same relative paths as the project's
``shared/data`` folder.  Each file is fetched into ``FILE.part`` (an
interrupted download resumes with an HTTP Range request when the server
supports it, and restarts otherwise), checked against its pinned SHA-256 and
only then renamed into place.  Files without a pinned checksum are refused
unless ``--allow-unpinned`` is given (their SHA-256 is then printed).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from .datasets import KNOWN, RemoteFile, data_dirs, download_dir

CHUNK = 1 << 16


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _url(rf: RemoteFile, mirror: str | None) -> str:
    return rf.url if not mirror else mirror.rstrip("/") + "/" + rf.relpath


def fetch_file(rf: RemoteFile, dest: Path, *, mirror: str | None = None,
               allow_unpinned: bool = False, timeout: float = 30.0,
               progress: Callable[[str, int, int | None], None] | None = None) -> tuple[Path, str]:
    """Download one file (resuming a ``.part``); return (path, "downloaded"|"present")."""
    target = dest / rf.relpath
    if rf.sha256 is None and not allow_unpinned:
        raise ValueError(f"{rf.relpath} has no pinned SHA-256 in clipviz; pass --allow-unpinned "
                         "to download it anyway (its SHA-256 will be printed)")
    if target.is_file() and (rf.sha256 is None or sha256_of(target) == rf.sha256):
        return target, "present"
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    url = _url(rf, mirror)
    req = urllib.request.Request(url, headers={"User-Agent": "clipviz-data-fetch"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already complete
            resp = None
        else:
            raise ValueError(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(f"could not reach {url} ({reason}). Are you offline? Copy the file to "
                         f"{target} by hand, or point --mirror at a reachable copy.") from None
    if resp is not None:
        with resp:
            if resp.status == 206:
                mode, done = "ab", have
            else:
                mode, done = "wb", 0
            length = resp.headers.get("Content-Length")
            total = done + int(length) if length and length.isdigit() else None
            try:
                with open(part, mode) as f:
                    while True:
                        block = resp.read(CHUNK)
                        if not block:
                            break
                        f.write(block)
                        done += len(block)
                        if progress:
                            progress(rf.relpath, done, total)
            except (urllib.error.URLError, OSError) as exc:
                raise ValueError(f"download of {url} was interrupted ({exc}); run the same "
                                 "command again to resume") from None
            if total is not None and done < total:
                raise ValueError(f"download of {url} stopped at {done} of {total} bytes; run the "
                                 "same command again to resume")
    digest = sha256_of(part)
    if rf.sha256 is not None and digest != rf.sha256:
        part.unlink()
        raise ValueError(f"{rf.relpath}: SHA-256 mismatch (got {digest}, expected {rf.sha256}); "
                         "the partial file was removed, run the command again to restart")
    part.replace(target)
    if rf.unzip:
        try:
            with zipfile.ZipFile(target) as z, z.open(rf.unzip) as src, \
                    open(target.parent / rf.unzip, "wb") as out:
                shutil.copyfileobj(src, out)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"could not extract {rf.unzip} from {target.name}: {exc}") from None
    return target, "downloaded" if rf.sha256 is not None else f"downloaded (unpinned, sha256 {digest})"


def fetch(name: str, *, dest: str | Path | None = None, **kw) -> list[tuple[Path, str]]:
    """Download every file of known data set ``name``."""
    if name not in KNOWN:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(KNOWN)}")
    d = Path(dest).expanduser() if dest else download_dir()
    return [fetch_file(rf, d, **kw) for rf in KNOWN[name].files]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    f = sub.add_parser("fetch", help="download a data set (verified, resumable)")
    f.add_argument("name", help=f"one of: {', '.join(KNOWN)}")
    f.add_argument("--dest", help="target folder (default $CLIPVIZ_DATA or ~/.cache/clipviz/data)")
    f.add_argument("--mirror", help="base URL of a mirror laid out like the data folder")
    f.add_argument("--allow-unpinned", action="store_true",
                   help="accept files clipviz has no SHA-256 for")
    f.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    sub.add_parser("list", help="list the known data sets and where they are found")


class _Progress:
    def __init__(self, stream):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last_pct = -1

    def __call__(self, name: str, done: int, total: int | None) -> None:
        pct = int(100 * done / total) if total else -1
        if not self.tty and (pct == self.last_pct or pct % 25):
            return
        self.last_pct = pct
        size = f"{done / 1e6:.2f}" + (f"/{total / 1e6:.2f} MB" if total else " MB")
        bar = f"{pct:3d}% " if total else ""
        self.stream.write(("\r" if self.tty else "") + f"{name}: {bar}{size}"
                          + ("" if self.tty else "\n"))
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.data_command == "list":
        for name, ds in KNOWN.items():
            found = [d for d in data_dirs() if all((d / f.relpath).is_file() for f in ds.files)]
            where = str(found[0]) if found else "not present (clipviz data fetch " + name + ")"
            out.write(f"{name:12s} {ds.kind:10s} {ds.description}\n{'':12s} {where}\n")
        return 0
    prog = _Progress(sys.stderr)
    results = fetch(args.name, dest=args.dest, mirror=args.mirror,
                    allow_unpinned=args.allow_unpinned, timeout=args.timeout, progress=prog)
    if prog.tty:
        sys.stderr.write("\n")
    for path, what in results:
        out.write(f"{path}: {what}\n")
    return 0
