"""`csoftmax data`: where the data is, sizes and verification; errors in one line, no traceback."""

import os
import subprocess
import sys

import pytest

from csoftmax.cli import Command, main


def test_data_reports_location_sizes_and_verification(fake_fashion_mnist, tmp_path, capsys):
    directory = fake_fashion_mnist.write(tmp_path / "mine")
    assert main(["data", "--data-dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == ["Fashion-MNIST, full dataset", f"  source: {directory}"]
    for file in fake_fashion_mnist.files:
        stored = len(fake_fashion_mnist.gzipped[file.name])
        assert f"{file.name}.gz" in out and f"{stored:,} bytes" in out and f"{file.size:,} decompressed" in out
    assert out.count("SHA-256 verified") == 4
    assert "train:     30 images, 3 per class" in out and "test:      20 images, 2 per class" in out


def test_data_without_download_says_where_it_looked(fake_fashion_mnist, data_places, capsys):
    assert main(["data"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("csoftmax data: error: Fashion-MNIST not found:")
    assert str(data_places["cache"]) in lines[0] and "csoftmax data --download" in lines[0]


def test_data_download_fetches_into_the_cache(fake_fashion_mnist, mirror_server, data_places, monkeypatch, capsys):
    monkeypatch.setenv("CSOFTMAX_MIRRORS", mirror_server.serve("m", fake_fashion_mnist.gzipped))
    assert main(["data", "--download"]) == 0
    out = capsys.readouterr().out
    assert f"source: {data_places['cache']} (cache), downloaded from {mirror_server.url}/m" in out
    assert len(mirror_server.requests) == 4


def test_data_download_failure_is_one_line(fake_fashion_mnist, mirror_server, data_places, monkeypatch, tmp_path,
                                          capsys):
    monkeypatch.setenv("CSOFTMAX_MIRRORS", mirror_server.serve("m", fake_fashion_mnist.gzipped, behaviour="truncated"))
    assert main(["data", "--download", "--data-dir", str(tmp_path / "mine")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and "Traceback" not in err
    assert not (tmp_path / "mine").exists() or list((tmp_path / "mine").iterdir()) == []


def test_data_corrupt_file_is_one_line(fake_fashion_mnist, tmp_path, capsys):
    directory = fake_fashion_mnist.write(tmp_path, compress=False)
    (directory / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05")
    assert main(["data", "--data-dir", str(directory)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("csoftmax data: error: ") and "train-labels-idx1-ubyte: truncated" in err


def test_data_sample(capsys):
    assert main(["data", "--sample"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Fashion-MNIST, embedded sample\n") and "6,000 images, 600 per class" in out
    assert main(["data", "--sample", "--download"]) == 1
    assert "--sample reports on the embedded sample" in capsys.readouterr().err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "--no-such-flag"])
    assert info.value.code == 2
    assert main([]) == 2 and "data" in capsys.readouterr().err  # no subcommand: the help, on stderr


def test_unexpected_errors_are_one_line_too(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr("csoftmax.cli.COMMANDS", (Command("data", "", lambda parser: None, broken),))
    assert main(["data"]) == 1
    assert capsys.readouterr().err == (
        "csoftmax data: internal error: RuntimeError: something broke (set CSOFTMAX_DEBUG=1 for the traceback)\n"
    )


def test_python_dash_m_runs_the_command(tmp_path):
    # cwd: `python -m` puts the current directory first on sys.path (the source tree would shadow the
    # installed package).
    result = subprocess.run([sys.executable, "-m", "csoftmax", "data", "--sample"], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Fashion-MNIST, embedded sample" in result.stdout


@pytest.mark.parametrize("make, description", [(lambda p: p.mkdir(), "a directory"),
                                               (os.mkfifo, "a FIFO (named pipe)")])
def test_data_dir_with_something_else_where_a_file_should_be(fake_fashion_mnist, tmp_path, capsys, make,
                                                             description):
    directory = fake_fashion_mnist.write(tmp_path / "mine", compress=False, names=list(fake_fashion_mnist.contents)[1:])
    make(directory / "train-images-idx3-ubyte")
    for argv in (["data", "--data-dir", str(directory)], ["data", "--download", "--data-dir", str(directory)],
                 ["train", "--data-dir", str(directory), "--out", str(tmp_path / "run")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"{directory / 'train-images-idx3-ubyte'}: {description} where the data file" in err, err
        assert "mirror" not in err
