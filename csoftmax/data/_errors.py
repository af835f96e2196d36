"""Exceptions and warnings of the Fashion-MNIST data layer.

Every error names the file, directory or mirror it is about. Each also derives from the built-in
exception a caller would naturally catch (ValueError for bad content, OSError for I/O), so code that
already handles those keeps working.
"""

import os
import sys
import warnings

# The csoftmax package's directory (this file is csoftmax/data/_errors.py): every frame under it is ours.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class FashionMNISTError(Exception):
    """Base class of the data layer's errors."""


class DataFormatError(FashionMNISTError, ValueError):
    """A file is not a well-formed (optionally gzip/xz-compressed) IDX file: bad magic, a header that
    disagrees with the length, a truncated or corrupt compressed stream; or something other than a file
    (a directory, a FIFO) where a data file should be."""


class ChecksumError(FashionMNISTError, ValueError):
    """A file's decompressed content has the wrong size or SHA-256: corrupt, truncated, or not the file
    it claims to be."""


class DownloadError(FashionMNISTError, OSError):
    """No mirror delivered a complete, verified file; the message lists each mirror's failure."""


class DataNotFoundError(FashionMNISTError, FileNotFoundError):
    """No full copy of Fashion-MNIST was found or fetched; the message says where it looked."""


class DataWarning(UserWarning):
    """Something about the data the user should know, e.g. a corrupt cached file that was removed."""


class SampleDataWarning(DataWarning):
    """The embedded sample is used because no full copy of Fashion-MNIST was found or fetched."""


def warn(message: str, category: type[Warning]) -> None:
    """warnings.warn, attributed to the first caller outside csoftmax, so the warning points at the
    user's line (and Python's default filter shows it once per such line)."""
    frame, level = sys._getframe(1), 2  # level 1 is this function
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
