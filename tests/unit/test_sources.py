"""Feed sources: folder globs and HTTP downloads (a real local HTTP server, no mocks)."""

import functools
import http.server
import threading

import pytest

from knowdo.registry import Feed
from knowdo.sources import SourceError, waiting_files


def feed(source):
    return Feed(
        id="f1",
        publisher_name="p",
        publisher_kind="ngo",
        domain="service_use",
        format="dhis2-json",
        source=source,
    )


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_folder_source_lists_matching_files_in_order(tmp_path):
    inbox = tmp_path / "inbox" / "a"
    inbox.mkdir(parents=True)
    for name in ("b.json", "a.json", "c.csv", ".partial.json"):
        (inbox / name).write_text("{}")
    files = waiting_files(
        feed({"folder": "a", "glob": "*.json"}), tmp_path / "inbox", tmp_path / "dl"
    )
    assert [p.name for p in files] == ["a.json", "b.json"]


def test_url_source_is_downloaded(http_dir, tmp_path):
    root, base = http_dir
    (root / "values.json").write_text('{"dataValues": []}')
    (path,) = waiting_files(feed({"url": f"{base}/values.json"}), tmp_path, tmp_path / "dl")
    assert path.read_text() == '{"dataValues": []}' and path.name.endswith("values.json")


def test_url_source_http_error_names_the_feed_and_status(http_dir, tmp_path):
    _, base = http_dir
    with pytest.raises(SourceError, match=r"feed f1: GET .*/missing.json answered HTTP 404"):
        waiting_files(feed({"url": f"{base}/missing.json"}), tmp_path, tmp_path / "dl")
