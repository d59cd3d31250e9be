"""Download a file to a temporary name, verify its MD5, and only then move it into place.

A workflow that trusts the presence of its input file must never see a partial or
wrong one, so every failure (network, HTTP, short body, checksum, Ctrl-C) removes the
temporary file and raises a :class:`KmlpError` that says what happened.
"""

from __future__ import annotations

import hashlib
import http.client
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import KmlpError
from ..files import atomic_path, md5_of, parse_md5

_BLOCK = 1 << 20
_MB = 1e6


class _Progress:
    """A one-line progress bar on stderr, redrawn at most 4 times a second."""

    def __init__(self, total: int | None, enabled: bool):
        self.total, self.enabled = total, enabled
        self.t0 = self.last = time.monotonic()

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.25):
            return
        self.last = now
        rate = done / _MB / max(now - self.t0, 1e-6)
        if self.total:
            line = f"{100 * done / self.total:5.1f}% {done / _MB:7.1f}/{self.total / _MB:.1f} MB"
        else:
            line = f"{done / _MB:7.1f} MB"
        print(f"\r  {line} {rate:6.1f} MB/s", end="\n" if final else "", file=sys.stderr, flush=True)


def _fetch(url: str, tmp: Path, progress: bool, timeout: float) -> str:
    """Stream ``url`` into ``tmp``; return the MD5 of the bytes received."""
    h = hashlib.md5()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _Progress(total, progress)
            while block := resp.read(_BLOCK):
                f.write(block)
                h.update(block)
                done += len(block)
                bar.update(done)
            bar.update(done, final=True)
    except urllib.error.HTTPError as exc:
        raise KmlpError(f"the server answered HTTP {exc.code} {exc.reason} for {url}") from None
    except http.client.IncompleteRead as exc:
        raise KmlpError(
            f"the download of {url} was cut short: the connection closed after "
            f"{done + len(exc.partial)} bytes, before the end of the file"
        ) from None
    except TimeoutError:
        raise KmlpError(f"the download of {url} timed out after {timeout} s without data") from None
    except urllib.error.URLError as exc:
        raise KmlpError(f"could not connect to fetch {url}: {exc.reason}") from None
    except (http.client.HTTPException, OSError) as exc:  # connection reset, disk full, ...
        raise KmlpError(f"the download of {url} failed after {done} bytes: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # e.g. an unknown URL scheme
        raise KmlpError(f"cannot download {url!r}: {exc}") from None
    if total is not None and done < total:
        raise KmlpError(f"the download of {url} was cut short: got {done} of {total} bytes (the connection dropped)")
    return h.hexdigest()


def download(url: str, out, md5: str, progress: bool = True, timeout: float = 60) -> Path:
    """Fetch ``url`` to ``out`` if ``out`` is not already there with MD5 ``md5``.

    The bytes go to a temporary file beside ``out`` (:func:`~kmlp.files.atomic_path`),
    renamed into place only when their MD5 matches; on any failure it is removed.
    """
    out = Path(out)
    md5 = parse_md5(md5)
    if out.is_file() and md5_of([out]) == md5:
        if progress:
            print(f"kmlp download: {out} is already there with MD5 {md5}", file=sys.stderr)
        return out
    if progress:
        print(f"kmlp download: {url} -> {out}", file=sys.stderr, flush=True)
    with atomic_path(out) as tmp:
        found = _fetch(url, tmp, progress, timeout)
        if found != md5:
            raise KmlpError(
                f"the download of {url} has MD5 {found} but {md5} was expected "
                "(corrupt transfer or a different file); nothing was kept"
            )
    return out
