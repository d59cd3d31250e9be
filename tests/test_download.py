"""Downloading against a local HTTP server: good file, wrong checksum, cut connection, 404;
and the workflow's `download` rule against it (no archive configured, data.url set)."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading

import pytest

import cifar_fake
from kmlp import cli
from kmlp.data.dataset import load
from kmlp.data.download import download
from kmlp.errors import KmlpError
from workflow_project import make_project, snakemake

PAYLOAD = cifar_fake.archive_bytes(cifar_fake.make_batches(20, 30, seed=1))
MD5 = hashlib.md5(PAYLOAD).hexdigest()


REQUESTS: list[str] = []  # the paths asked for, in order


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        REQUESTS.append(self.path)
        if self.path == "/cifar.tar.gz":
            self._head(200, len(PAYLOAD))
            self.wfile.write(PAYLOAD)
        elif self.path.startswith("/moved/"):  # a redirect, as a mirror or a CDN answers
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/moved"))
            self.send_header("Content-Length", "0")
            self.end_headers()
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


# -- the workflow's download rule ----------------------------------------------------
def download_project(root, url, md5):
    """A tiny project with no local archive: the data set comes from ``url``."""
    return make_project(root, data={"url": url, "archive": "", "md5": md5, "val_size": 30})


@pytest.mark.slow
def test_the_workflow_downloads_through_a_redirect_and_prepares(server, tmp_path):
    root = download_project(tmp_path / "p", f"{server}/moved/cifar.tar.gz", MD5)
    REQUESTS.clear()
    proc = snakemake(root, "--cores", "1", "results/data/cifar10.h5")
    assert REQUESTS == ["/moved/cifar.tar.gz", "/cifar.tar.gz"]
    log = proc.stdout + proc.stderr
    assert "rule download:" in log and "rule prepare:" in log
    assert (root / "results/data/cifar-10-python.tar.gz").read_bytes() == PAYLOAD
    assert leftovers(root / "results/data") == ["cifar-10-python.tar.gz", "cifar10.h5"]
    ds = load(root / "results/data/cifar10.h5")
    assert ds.source_md5 == MD5 and (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (70, 30, 30)
    assert "100.0%" in (root / "results/logs/download.log").read_text()


@pytest.mark.slow
def test_the_workflow_refuses_a_download_with_the_wrong_md5_and_keeps_nothing(server, tmp_path):
    wrong = "f" * 32
    root = download_project(tmp_path / "p", f"{server}/cifar.tar.gz", wrong)
    proc = snakemake(root, "--cores", "1", "results/data/cifar10.h5", check=False)
    assert proc.returncode != 0 and "rule prepare:" not in proc.stdout + proc.stderr
    lines = (root / "results/logs/download.log").read_text().splitlines()
    errors = [line for line in lines if "error" in line]
    assert errors == [
        f"kmlp download: error: the download of {server}/cifar.tar.gz has MD5 {MD5} but {wrong} was expected "
        "(corrupt transfer or a different file); nothing was kept"
    ], lines
    assert not any("Traceback" in line for line in lines)
    # no archive and no temporary file anywhere: what is left is the job's log
    kept = sorted(p.relative_to(root).as_posix() for p in (root / "results").rglob("*") if p.is_file())
    assert kept == ["results/logs/download.log"]
