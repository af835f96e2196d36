"""The chapter's program (examples/chapter.py), run as a script on the real Fashion-MNIST: it reaches the
chapter's results, and its epochs are those of the fast path from the same seed."""

import re
import subprocess
import sys
from pathlib import Path

from training_helpers import EPOCH_LINE, assert_meets_the_issue, assert_same_run

from csoftmax import EpochMetrics

CHAPTER = Path(__file__).resolve().parents[1] / "examples" / "chapter.py"


def test_the_chapters_program_runs_as_a_script(tmp_path, chapter_run):
    result = subprocess.run([sys.executable, "-W", "error", str(CHAPTER), "--seed", "0"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    before = float(re.search(r"accuracy before training: ([\d.]+)", result.stdout).group(1))
    assert abs(before - 0.1) < 0.05  # chance, as in the chapter
    epochs = [EpochMetrics(int(e), float(loss), float(train), float(test), float(s))
              for e, loss, train, test, s in EPOCH_LINE.findall(result.stdout)]
    assert_meets_the_issue(epochs)

    # Outside Jupyter the figures land in files, and the script says where.
    figures = tmp_path / "csoftmax-figures"
    assert {p.name for p in figures.iterdir()} == {"training-curves.png", "predictions.png"}
    assert "training-curves.png" in result.stderr and "predictions.png" in result.stderr
    assert_same_run(epochs, chapter_run.epochs)
