"""csoftmax._progress: the one progress bar, drawn by `csoftmax train` per epoch and by downloads per byte."""

import io

from csoftmax._progress import ProgressBar


class Clock:
    """A hand-driven time.monotonic, so throttling is tested without sleeping."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_draws_label_percentage_bar_and_detail_in_place():
    stream = io.StringIO()
    bar = ProgressBar(stream, width=20)
    bar.update("f.gz", 1_000_000, 2_000_000, "  1.0/2.0 MB")
    assert stream.getvalue() == "\rf.gz  50% [##########..........]  1.0/2.0 MB"


def test_an_unknown_total_draws_no_bar():
    stream = io.StringIO()
    ProgressBar(stream).update("f.gz", 5, None, "  0.0 MB")
    assert stream.getvalue() == "\rf.gz  0.0 MB"


def test_throttled_to_ten_draws_a_second_but_the_end_is_always_drawn():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, width=10, clock=clock)
    bar.update("x", 1, 10)
    clock.now += 0.05
    bar.update("x", 2, 10)  # too soon: not drawn
    assert stream.getvalue() == "\rx  10% [#.........]"
    clock.now += 0.01
    bar.update("x", 10, 10)  # complete: drawn however soon
    assert stream.getvalue().endswith("\rx 100% [##########]")
    clock.now += 0.2
    bar.update("x", 3, 10)
    assert stream.getvalue().endswith("\rx  30% [###.......]")


def test_clear_erases_the_longest_line_drawn_and_finish_ends_it():
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    bar.update("a long label", 1, 2)
    drawn = len("a long label  50% [#####.....]")
    bar.clear()
    assert stream.getvalue().endswith("\r" + " " * drawn + "\r")
    stream.truncate(0)
    stream.seek(0)
    bar.update("y", 2, 2)
    bar.finish()
    assert stream.getvalue() == "\ry 100% [##########]\n"


def test_more_done_than_total_stays_a_full_bar():
    stream = io.StringIO()
    ProgressBar(stream, width=4).update("z", 7, 5)
    assert stream.getvalue() == "\rz 100% [####]"
