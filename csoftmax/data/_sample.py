"""The embedded Fashion-MNIST sample shipped in csoftmax/data/.

A stratified subset of the real dataset (see its manifest for the rule and the counts), stored as
xz-compressed IDX files that read like the full ones, with the SHA-256 of each decompressed file in the
manifest. It is made by scripts/make_fashion_mnist_sample.py from the real files.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._errors import DataNotFoundError
from ._files import DataFile, FoundData, read_all

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
MANIFEST_NAME = "fashion-mnist-sample.json"
LICENSE_NAME = "LICENSE-fashion-mnist.txt"


def read_manifest(directory: Path = SAMPLE_DIR) -> dict:
    path = directory / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataNotFoundError(
            f"the embedded Fashion-MNIST sample is missing ({path} not found): is the installation complete?"
        ) from exc


def sample_files(manifest: dict) -> tuple[DataFile, ...]:
    """The sample's files, in the order train images, train labels, test images, test labels."""
    return tuple(DataFile(entry["name"], entry["size"], entry["sha256"]) for entry in manifest["files"])


def read_sample(directory: Path = SAMPLE_DIR) -> FoundData:
    """Read and verify the embedded sample."""
    manifest = read_manifest(directory)
    contents, verified = read_all(directory, sample_files(manifest))
    return FoundData(contents, verified, f"embedded sample ({directory})")
