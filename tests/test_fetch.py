"""`clipviz data fetch` against a local HTTP server serving ../shared/data."""

from __future__ import annotations

import functools
import http.server
import socket
import threading

import pytest

from clipviz import fetch
from clipviz.cli import main
from clipviz.datasets import KNOWN


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support (like real web servers)."""

    ranges: list = []

    def log_message(self, *a):
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        if not rng or not self.server.honour_range:
            return super().send_head()
        path = self.translate_path(self.path)
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(404)
            return None
        size = f.seek(0, 2)
        start = int(rng.split("=")[1].split("-")[0])
        self.server.ranges.append(start)
        if start >= size:
            f.close()
            self.send_error(416)
            return None
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        return f


@pytest.fixture()
def server(shared_data):
    handler = functools.partial(RangeHandler, directory=str(shared_data))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.honour_range = True
    srv.ranges = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_fetch_verifies_and_skips_when_present(server, tmp_path, shared_data):
    _, url = server
    seen = []
    [(path, what)] = fetch.fetch("jsb", dest=tmp_path, mirror=url,
                                 progress=lambda n, d, t: seen.append((d, t)))
    assert what == "downloaded" and path.read_bytes() == (shared_data / "music/JSB_Chorales.mat").read_bytes()
    assert seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert not path.with_name(path.name + ".part").exists()
    assert fetch.fetch("jsb", dest=tmp_path, mirror=url)[0][1] == "present"


@pytest.mark.parametrize("honour", [True, False])
def test_fetch_resumes_a_partial_download(server, tmp_path, shared_data, honour):
    srv, url = server
    srv.honour_range = honour
    src = (shared_data / "music/Nottingham.mat").read_bytes()
    part = tmp_path / "music" / "Nottingham.mat.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(src[:100_000])
    [(path, what)] = fetch.fetch("nottingham", dest=tmp_path, mirror=url)
    assert path.read_bytes() == src
    assert srv.ranges == ([100_000] if honour else [])


def test_checksum_mismatch_is_refused_and_cleaned(server, tmp_path):
    _, url = server
    part = tmp_path / "music" / "JSB_Chorales.mat.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage" * 100)  # wrong prefix: the resumed file cannot match
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        fetch.fetch("jsb", dest=tmp_path, mirror=url)
    assert not part.exists() and not (tmp_path / "music" / "JSB_Chorales.mat").exists()
    assert fetch.fetch("jsb", dest=tmp_path, mirror=url)[0][1] == "downloaded"  # a rerun restarts


def test_offline_message_and_unknown_and_unpinned(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here
    with pytest.raises(ValueError, match="Are you offline"):
        fetch.fetch("jsb", dest=tmp_path, mirror=f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        fetch.fetch("mnist", dest=tmp_path)
    with pytest.raises(ValueError, match="no pinned SHA-256.*--allow-unpinned"):
        fetch.fetch("text8", dest=tmp_path)
    assert KNOWN["shakespeare"].files[0].sha256


def test_cli_data_fetch_and_unpinned_download(server, tmp_path, capsys):
    _, url = server
    assert main(["data", "fetch", "shakespeare", "--dest", str(tmp_path), "--mirror", url]) == 0
    out = capsys.readouterr()
    assert "input.txt: downloaded" in out.out and "100%" in out.err
    # ptb.train.txt is not pinned and not on this mirror: a clear refusal, then a clear 404
    assert main(["data", "fetch", "ptb", "--dest", str(tmp_path), "--mirror", url]) == 2
    assert "--allow-unpinned" in capsys.readouterr().err
    assert main(["data", "fetch", "ptb", "--dest", str(tmp_path), "--mirror", url,
                 "--allow-unpinned"]) == 2
    assert "HTTP 404" in capsys.readouterr().err


def test_unpinned_zip_is_extracted_and_found(tmp_path, monkeypatch):
    import hashlib
    import zipfile

    from clipviz import datasets

    served = tmp_path / "mirror"
    (served / "text" / "text8").mkdir(parents=True)
    zpath = served / "text" / "text8" / "text8.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("text8", " anarchism originated as a term of abuse" * 50)
    handler = functools.partial(RangeHandler, directory=str(served))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.honour_range, srv.ranges = True, []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "data"
        [(path, what)] = fetch.fetch("text8", dest=dest, allow_unpinned=True,
                                     mirror=f"http://127.0.0.1:{srv.server_address[1]}")
    finally:
        srv.shutdown()
        srv.server_close()
    assert hashlib.sha256(zpath.read_bytes()).hexdigest() in what and "unpinned" in what
    monkeypatch.setenv("CLIPVIZ_DATA", str(dest))
    p = datasets.resolve("text8", "characters")
    assert p == dest / "text" / "text8" / "text8"
    d = datasets.load_text(p)
    assert d["train"].startswith(" anarchism") and len(d["test"]) > 0
