import http.server
import os
import shutil
import tempfile
import threading
import time

import pytest
import torch

# The native kernels (memory cache, Winograd) are built into a directory of this test session,
# never the user's cache; child processes inherit it.
_KERNELS = tempfile.mkdtemp(prefix="zoo-test-kernels-")
os.environ["ZOO_CACHE_DIR"] = _KERNELS


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_KERNELS, ignore_errors=True)

# Tests run on 2 cores next to other processes; keep each test single-threaded and repeatable.
torch.set_num_threads(max(1, min(2, int(os.environ.get("ZOO_TEST_THREADS", "2")))))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class _ReleaseHandler(http.server.BaseHTTPRequestHandler):
    """``/ok/NAME`` serves a file of the root; ``/truncated/NAME`` announces its full length and
    sends half; ``/slow/NAME`` sends it in small chunks (a download to kill); ``/stall/NAME``
    sends half and goes quiet (the connection open); ``/busy/NAME`` answers 503 to the first
    request of each name, then serves it."""

    def do_GET(self):
        self.server.requests.append(self.path)
        mode, _, name = self.path.lstrip("/").partition("/")
        path = os.path.join(self.server.root, name)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        if mode == "busy" and self.server.requests.count(self.path) == 1:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "truncated":
            self.wfile.write(data[: len(data) // 2])
        elif mode == "slow":
            for i in range(0, len(data), 1 << 14):
                self.wfile.write(data[i:i + (1 << 14)])
                self.wfile.flush()
                time.sleep(0.05)
        elif mode == "stall":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.server.release.wait(30)
        else:
            self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ReleaseHandler)
    httpd.daemon_threads = True
    httpd.root, httpd.requests, httpd.release = str(root), [], threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fetched_by_hand(tmp_path, monkeypatch):
    """``fetched_by_hand("model.tag", checkpoint, file_name)``: a release that is fetched by hand
    (Google Drive, Baidu), saved under ``file_name``, imported as ``zoo weights fetch model.tag --from
    FILE`` does (into this test's own cache) and built by its tag, in eval mode."""
    import zoo

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))

    def fetch(ref: str, checkpoint, file_name: str):
        path = tmp_path / file_name
        torch.save(checkpoint, path)
        zoo.models.import_files(zoo.weights_info(ref), [str(path)])
        name, _, tag = ref.partition(".")
        return zoo.build(name, pretrained=tag).eval()

    return fetch
