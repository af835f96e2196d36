"""The chapter as a notebook (examples/chapter.ipynb), executed by a real Jupyter kernel on the real
Fashion-MNIST: it reaches the chapter's results, draws the live plot (one figure, redrawn after every
epoch) and displays the prediction grid, and its epochs are those of the fast path from the same seed.
"""

import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from training_helpers import EPOCH_LINE, EPOCHS, assert_meets_the_issue, assert_same_run

from csoftmax import EpochMetrics

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "chapter.ipynb"
SVG = "image/svg+xml"


class RecordingClient(NotebookClient):
    """Keeps every display message (display_data and update_display_data) the kernel sends, with the
    index of the cell that sent it: the executed notebook keeps only a display's last state."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.displays = []

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] in ("display_data", "update_display_data"):
            transient = msg["content"].get("transient") or {}
            self.displays.append((cell_index, msg["msg_type"], transient.get("display_id"), msg["content"]["data"]))
        return super().process_message(msg, cell, cell_index)


def svg_root(data):
    root = ET.fromstring(data[SVG])
    assert root.tag.endswith("svg")
    return root


def cell_index(notebook, fragment):
    (index,) = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and fragment in cell.source]
    return index


def stream_text(cell, name):
    return "".join(out.text for out in cell.outputs if out.output_type == "stream" and out.name == name)


def test_the_notebook_is_kept_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert sum(cell.cell_type == "markdown" for cell in notebook.cells) >= 6  # the chapter's prose between


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook run top to bottom in a fresh ipykernel (in a scratch directory): (notebook, client)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = RecordingClient(notebook, timeout=900, kernel_name="python3",
                             resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook"))}})
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails
    return notebook, client


def test_the_notebook_trains_as_the_chapter_does(executed, chapter_run):
    notebook, _ = executed
    printed = stream_text(notebook.cells[cell_index(notebook, "accuracy before training")], "stdout")
    assert abs(float(printed.split(":")[1]) - 0.1) < 0.05  # chance, as in the chapter
    train_cell = notebook.cells[cell_index(notebook, "d2l.train_ch3(")]
    epochs = [EpochMetrics(int(e), float(loss), float(train), float(test), float(s))
              for e, loss, train, test, s in EPOCH_LINE.findall(stream_text(train_cell, "stdout"))]
    assert_meets_the_issue(epochs)
    assert_same_run(epochs, chapter_run.epochs)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert stream_text(cell, "stderr") == "", cell.source  # no warnings, no "written to" notes


def test_the_live_plot_is_one_figure_redrawn_after_every_epoch(executed):
    notebook, client = executed
    train = cell_index(notebook, "d2l.train_ch3(")
    messages = [(kind, display_id, data) for i, kind, display_id, data in client.displays if i == train]
    kinds = [kind for kind, _, _ in messages]
    assert kinds == ["display_data"] + ["update_display_data"] * (EPOCHS - 1)
    assert len({display_id for _, display_id, _ in messages}) == 1 and messages[0][1] is not None
    figures = [data[SVG] for _, _, data in messages]
    assert len(set(figures)) == EPOCHS  # every epoch drew something new
    for figure in figures:
        svg_root({SVG: figure})
    # the notebook keeps the last state of the display: the plot after the last epoch
    (shown,) = [out for out in notebook.cells[train].outputs if out.output_type == "display_data"]
    assert shown.data[SVG] == figures[-1]
    curves = [g for g in svg_root(shown.data).iter() if g.get("id", "").startswith("line2d")]
    assert len(curves) >= 3  # train loss, train acc and test acc (tick marks are line2d too)


def test_the_prediction_grid_is_displayed(executed):
    notebook, _ = executed
    cell = notebook.cells[cell_index(notebook, "d2l.predict_ch3(")]
    (shown,) = [out for out in cell.outputs if out.output_type == "display_data"]
    images = [e for e in svg_root(shown.data).iter() if e.tag.endswith("image")]
    assert len(images) == 6  # predict_ch3's first six test images, each with its labels above
