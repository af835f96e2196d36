import gzip
import hashlib
import http.server
import importlib
import os
import sys
import threading

import numpy as np
import pytest

# tests/helpers.py is imported as a plain module by the kernel tests.
sys.path.insert(0, os.path.dirname(__file__))


def pytest_report_header(config):
    """Which csoftmax the tests run: its path (so a run shows it imported the installed package, not
    the source tree) and, in a dispatched build, the instruction-set variant chosen at import."""
    try:
        import csoftmax
    except ImportError as error:
        return f"csoftmax: not importable ({error})"
    variant = csoftmax.build_info().get("variant")
    return f"csoftmax: {csoftmax.__file__}" + (f", variant {variant}" if variant else "")


@pytest.fixture
def restore_threads():
    """Whatever thread count a test sets, the next test starts from the default (all available)."""
    import csoftmax

    yield
    csoftmax.set_num_threads(0)


@pytest.fixture
def import_benchmark(monkeypatch):
    """import_benchmark(name): a script of benchmarks/ imported as a module, forgotten after the test."""
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
    imported = []

    def load(name):
        imported.append(name)
        return importlib.import_module(name)

    yield load
    for name in imported:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def chapter_run():
    """The chapter's recipe on the full Fashion-MNIST: 10 epochs of the fused kernel from seed 0 (a
    RecipeResult). Trained once per session and shared by the tests that need it; none may change it.

    Trained with the default thread count, so the tests that compare it with a run of their own on
    another count (`csoftmax train --threads 1`) check that threads change nothing."""
    from training_helpers import EPOCHS, LR, assert_meets_the_issue, full_data, iterators

    from csoftmax import set_num_threads, train_recipe

    set_num_threads(0)
    train_iter, test_iter = iterators(full_data(), seed=0)
    result = train_recipe(train_iter, test_iter, EPOCHS, LR, seed=0)
    assert_meets_the_issue(result.epochs)
    return result


# --- Fashion-MNIST data layer (tests/test_data*.py) ----------------------------------------------------
@pytest.fixture(autouse=True, scope="session")
def _isolated_data_environment(tmp_path_factory):
    """No test reads or writes the user's data cache or $CSOFTMAX_DATA, or reaches a real mirror."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CSOFTMAX_CACHE_DIR", str(tmp_path_factory.mktemp("csoftmax-cache")))
        patch.delenv("CSOFTMAX_DATA", raising=False)
        patch.setenv("CSOFTMAX_MIRRORS", "")
        yield


class FakeFashionMNIST:
    """Small generated IDX files under the real names (3 train / 2 test images per class); the fixture
    makes them the files the data layer expects, in place of the real table."""

    def __init__(self):
        from csoftmax.data._files import FASHION_MNIST_FILES, DataFile
        from csoftmax.data._idx import encode_idx

        rng = np.random.default_rng(1234)
        train_labels = np.repeat(np.arange(10, dtype=np.uint8), 3)
        test_labels = np.tile(np.arange(10, dtype=np.uint8), 2)
        self.arrays = [
            rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), train_labels,
            rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), test_labels,
        ]  # fmt: skip
        names = [file.name for file in FASHION_MNIST_FILES]
        self.contents = {name: encode_idx(array) for name, array in zip(names, self.arrays, strict=True)}
        self.files = tuple(DataFile(n, len(c), hashlib.sha256(c).hexdigest()) for n, c in self.contents.items())
        self.gzipped = {name: gzip.compress(content) for name, content in self.contents.items()}

    def write(self, directory, *, compress=True, names=None):
        """Write the files (all, or `names`) into `directory`, gzip-compressed or plain; return it."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in names or self.contents:
            content = self.gzipped[name] if compress else self.contents[name]
            (directory / (name + (".gz" if compress else ""))).write_bytes(content)
        return directory


@pytest.fixture
def data_places(monkeypatch, tmp_path):
    """Empty per-test directories standing for $CSOFTMAX_DATA (not set: tests set it themselves), the
    cache ($CSOFTMAX_CACHE_DIR; "cache" is its fashion-mnist folder) and the Debian location."""
    env, cache_root, system = tmp_path / "env", tmp_path / "cache", tmp_path / "system"
    monkeypatch.setenv("CSOFTMAX_CACHE_DIR", str(cache_root))
    monkeypatch.setattr("csoftmax.data._locate.SYSTEM_DATA_DIRS", (system,))
    return {"env": env, "cache": cache_root / "fashion-mnist", "system": system}


@pytest.fixture
def fake_fashion_mnist(monkeypatch):
    import csoftmax.data._files

    fake = FakeFashionMNIST()
    monkeypatch.setattr(csoftmax.data._files, "FASHION_MNIST_FILES", fake.files)
    return fake


class MirrorServer:
    """An HTTP server on 127.0.0.1 serving `routes`: path → (behaviour, body). Behaviours: "ok";
    "truncated" (a short body with a matching Content-Length); "interrupted" (the connection closes after
    half the announced body); an int (that HTTP error status). `requests` records the paths asked for."""

    def __init__(self):
        self.routes, self.requests = {}, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                behaviour, body = mirror.routes.get(self.path, (404, b""))
                if isinstance(behaviour, int):
                    self.send_error(behaviour)
                    return
                sent = body[: len(body) // 2] if behaviour in ("truncated", "interrupted") else body
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) if behaviour == "interrupted" else len(sent)))
                self.end_headers()
                self.wfile.write(sent)
                self.close_connection = True

            def log_message(self, *args):  # keep the test output clean
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def serve(self, prefix, files, behaviour="ok"):
        """Serve `files` (name → gzip bytes) as prefix/name.gz; return the mirror's base URL."""
        for name, body in files.items():
            self.routes[f"/{prefix}/{name}.gz"] = (behaviour, body)
        return f"{self.url}/{prefix}"


@pytest.fixture
def mirror_server():
    server = MirrorServer()
    yield server
    server.server.shutdown()
    server.server.server_close()
