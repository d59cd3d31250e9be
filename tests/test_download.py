"""Downloading against a local HTTP server: good file, wrong checksum, cut connection, 404."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading

import pytest

import cifar_fake
from kmlp import cli
from kmlp.data.download import download
from kmlp.errors import KmlpError

PAYLOAD = cifar_fake.archive_bytes(cifar_fake.make_batches(20, 30, seed=1))
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/cifar.tar.gz":
            self._head(200, len(PAYLOAD))
            self.wfile.write(PAYLOAD)
        elif self.path == "/cut.tar.gz":  # promises all bytes, sends half, hangs up
            self._head(200, len(PAYLOAD))
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404, "Not Found")

    def _head(self, code, length):
        self.send_response(code)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_verifies_and_moves_into_place(server, tmp_path, capsys):
    out = tmp_path / "sub" / "cifar.tar.gz"
    assert download(f"{server}/cifar.tar.gz", out, MD5, progress=True, timeout=5) == out
    assert out.read_bytes() == PAYLOAD
    assert leftovers(out.parent) == ["cifar.tar.gz"]
    err = capsys.readouterr().err
    assert "100.0%" in err and "MB/s" in err

    # already there with the right MD5: nothing is fetched (the URL would 404)
    download(f"{server}/missing", out, MD5, progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD


def test_download_through_the_cli(server, tmp_path, capsys):
    out = tmp_path / "cifar.tar.gz"
    rc = cli.main(["download", "--url", f"{server}/cifar.tar.gz", "--md5", MD5, "--out", str(out), "--quiet"])
    assert rc == 0
    assert out.read_bytes() == PAYLOAD
    assert capsys.readouterr().err == ""


def test_wrong_checksum_keeps_nothing(server, tmp_path, capsys):
    wrong = "f" * 32
    out = tmp_path / "cifar.tar.gz"
    rc = cli.main(["download", "--url", f"{server}/cifar.tar.gz", "--md5", wrong, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert MD5 in err and wrong in err
    assert leftovers(tmp_path) == []


def test_cut_connection_keeps_nothing(server, tmp_path):
    with pytest.raises(KmlpError, match="cut short"):
        download(f"{server}/cut.tar.gz", tmp_path / "cifar.tar.gz", MD5, progress=False, timeout=5)
    assert leftovers(tmp_path) == []


def test_http_404_is_a_clear_error(server, tmp_path, capsys):
    rc = cli.main(
        ["download", "--url", f"{server}/nothing-here", "--md5", MD5, "--out", str(tmp_path / "x.tar.gz"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "HTTP 404" in err and "nothing-here" in err and "Traceback" not in err
    assert leftovers(tmp_path) == []


def test_refused_connection_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(KmlpError, match="could not connect"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", MD5, progress=False, timeout=5)
    assert leftovers(tmp_path) == []


def test_interrupt_keeps_nothing(server, tmp_path, monkeypatch):
    import kmlp.data.download as mod

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod._Progress, "update", boom)
    with pytest.raises(KeyboardInterrupt):
        download(f"{server}/cifar.tar.gz", tmp_path / "x", MD5, progress=False, timeout=5)
    assert leftovers(tmp_path) == []


def test_bad_md5_argument(tmp_path):
    with pytest.raises(KmlpError, match="not a 32-digit"):
        download("http://127.0.0.1:1/x", tmp_path / "x", "abc", progress=False)
