"""The verbs that bring CIFAR-10 in: download, prepare."""

from __future__ import annotations

import json
from pathlib import Path

from ..data import OFFICIAL_MD5, OFFICIAL_URL
from . import options


def add_download(sub) -> None:
    s = options.verb(sub, download, "download CIFAR-10 and verify its MD5", options.QUIET)
    s.add_argument("--url", default=OFFICIAL_URL, help="where to download from (default: the official archive)")
    s.add_argument("--md5", default=OFFICIAL_MD5, help="MD5 the bytes must have (default: the official archive's)")
    options.output(s, "--out", required=True, help="where to put the verified archive")


def download(args) -> None:
    """Download an archive to a temporary name, verify its MD5 and only then move it to
    --out. Nothing is left on failure."""
    from ..data.download import download as fetch

    fetch(args.url, args.out, args.md5, progress=not args.quiet)


def add_prepare(sub) -> None:
    s = options.verb(sub, prepare, "verify, read and normalise CIFAR-10 into one HDF5 file", options.QUIET)
    s.add_argument(
        "--archive", required=True, type=Path, help="cifar-10-python.tar.gz or an extracted cifar-10-batches-py/ folder"
    )
    s.add_argument(
        "--md5",
        default=OFFICIAL_MD5,
        help="MD5 the archive must have (default: the official one); 'skip' skips the check",
    )
    options.output(s, "--out", required=True, help="the HDF5 file to write")
    s.add_argument(
        "--val-size",
        type=int,
        default=5000,
        help="images held out of the training batches for validation (default 5000)",
    )


def prepare(args) -> None:
    """Read the python-version CIFAR-10 archive (or its extracted folder) safely, split off
    a validation set, normalise with training statistics and write one HDF5 file."""
    from ..data.dataset import prepare as build

    summary = build(args.archive, args.md5, args.out, val_size=args.val_size, progress=not args.quiet)
    print(json.dumps(summary, indent=2, sort_keys=True))


VERBS = (add_download, add_prepare)
