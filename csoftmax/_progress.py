"""The progress bar of the terminal: `label  42% [##########..............]  detail`, redrawn in place.

`csoftmax train` draws one per epoch, downloads one per file. Redrawing is throttled (at most ten times
a second, but the end of a task is always drawn), so a caller may update it as often as it likes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class ProgressBar:
    """Draws on `stream`; `clear()` before other output on the same line, `finish()` to end the line."""

    def __init__(self, stream: TextIO, *, width: int = 24, min_interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        self.stream, self.width, self.min_interval, self.clock = stream, width, min_interval, clock
        self.last_draw = -float("inf")
        self.longest = 0  # the longest line drawn, which clear() must cover
        self.line = self.shown = ""

    def update(self, label: str, done: int, total: int | None, detail: str = "") -> None:
        """Show `done` of `total` (None: unknown, no bar) after `label`, then `detail`."""
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.line = f"{label} {int(100 * fraction):3d}% [{bar}]{detail}"
        else:
            self.line = f"{label}{detail}"
        now = self.clock()
        complete = total is not None and done >= total
        if complete or now - self.last_draw >= self.min_interval:
            self.last_draw = now
            self._draw(self.line)

    def clear(self) -> None:
        """Erase the line, e.g. before printing a result under it."""
        self.stream.write("\r" + " " * self.longest + "\r")
        self.stream.flush()

    def finish(self) -> None:
        """Draw the last state (if throttling skipped it) and end the line."""
        if self.line != self.shown:
            self._draw(self.line)
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, line: str) -> None:
        self.shown, self.longest = line, max(self.longest, len(line))
        self.stream.write("\r" + line)
        self.stream.flush()
