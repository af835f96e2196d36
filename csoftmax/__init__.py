"""csoftmax: softmax regression from scratch, with a fused C++ linear + softmax + cross-entropy kernel."""

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - only without a built extension
    raise ImportError(
        "csoftmax's compiled extension (csoftmax._core) could not be imported: was the package built? "
        "Install it with `pip install .` from the source tree."
    ) from exc

__version__ = "0.1.0"
