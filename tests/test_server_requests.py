"""The server's pages for people and its record of requests: the OpenAPI pages work offline
(every script, style and icon they load is served by the server itself), and every request is
logged as a JSON line with who asked, what, the answer and how long it took, never a secret.
Over the real ASGI app under uvicorn on loopback, with httpx as the client."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

import labledger as ll
from labledger.access import Access
from labledger.server import create_app, serving
from labledger.server.requestlog import redacted
from labledger.sim import write_shot

# what a browser must be told each kind of asset is, or it refuses to run or apply it
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/json",),
}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Server:
    url: str
    key: str
    log: _Lines

    def logged(self, path: str) -> list[dict]:
        return [line for line in map(json.loads, self.log.lines) if line["path"] == path]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("requests")
    la = ll.init(folder / "archive")
    la.ingest([write_shot(folder, 1001)])
    access = Access(la.catalog)
    access.add_user("alice", project="default", role="reader", by="tests")
    key = access.create_key("alice", scopes=["read"])
    logger = logging.getLogger(f"tests.requests.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = _Lines()
    logger.addHandler(handler)
    with serving(create_app(la, request_log=logger)) as url:
        yield Server(url, key, handler)
    la.close()


class _References(HTMLParser):
    """Every URL a page makes the browser load: src and href attributes, ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_load_nothing_from_outside(server: Server, page: str) -> None:
    answer = httpx.get(f"{server.url}{page}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "http://" not in html and "https://" not in html  # no CDN, no fonts, no favicon
    found = _References()
    found.feed(html)
    urls = found.urls
    if page == "/docs":  # Swagger UI takes its spec from the script, not an attribute
        assert "url: '/openapi.json'" in html
        urls.append("/openapi.json")
    assert {Path(urlsplit(u).path).suffix for u in urls} >= (
        {".js", ".css", ".json"} if page == "/docs" else {".js", ".json"}
    )
    for url in urls:
        assert not url.startswith("//") and not urlsplit(url).scheme, url  # same origin
        asset = httpx.get(urljoin(f"{server.url}{page}", url))
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"].split(";")[0]
        assert kind in CONTENT_TYPES[Path(urlsplit(url).path).suffix], (url, kind)
        assert asset.content, url


def test_each_request_is_a_json_line_with_who_what_and_how_long(server: Server) -> None:
    bearer = {"Authorization": f"Bearer {server.key}"}
    assert httpx.get(f"{server.url}/api/v1/runs/by-number/1001", headers=bearer).is_success
    assert httpx.get(f"{server.url}/api/v1/info", headers={"X-API-Key": server.key}).is_success
    assert httpx.get(f"{server.url}/api/v1/runs/by-number/1001").status_code == 401
    assert httpx.get(f"{server.url}/api/v1/runs/by-number/77", headers=bearer).status_code == 404
    assert httpx.post(f"{server.url}/api/v1/ingest").status_code == 401  # refused at the gate

    [keyed, anonymous] = server.logged("/api/v1/runs/by-number/1001")
    assert keyed["user"] == "alice" and keyed["status"] == 200 and keyed["method"] == "GET"
    assert anonymous["user"] == "-" and anonymous["status"] == 401
    for line in (keyed, anonymous):
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["remote"] == "127.0.0.1" and line["time"].endswith("+00:00")
        assert line["bytes"] > 0 and line["agent"].startswith("python-httpx")
    assert server.logged("/api/v1/info")[0]["user"] == "alice"  # the key in X-API-Key
    assert [(line["status"], line["user"]) for line in server.logged("/api/v1/runs/by-number/77")
            ] == [(404, "alice")]  # fmt: skip
    [gate] = server.logged("/api/v1/ingest")
    assert (gate["method"], gate["status"], gate["user"]) == ("POST", 401, "-")


def test_no_key_or_query_secret_is_ever_logged(server: Server) -> None:
    secret = server.key.split("_", 2)[2]
    httpx.get(f"{server.url}/api/v1/info", headers={"Authorization": f"Bearer {server.key}"})
    httpx.get(f"{server.url}/api/v1/info", headers={"Authorization": f"Bearer {server.key}x"})
    httpx.get(f"{server.url}/api/v1/runs?api_key={server.key}&token=tok-123&limit=2")
    httpx.get(f"{server.url}/api/v1/runs?password=pw-456&X-Session-Id=ses-789")
    text = "\n".join(server.log.lines)
    for leaked in (server.key, secret, "tok-123", "pw-456", "ses-789"):
        assert leaked not in text
    queries = [line["query"] for line in server.logged("/api/v1/runs")]
    assert "api_key=***&token=***&limit=2" in queries
    assert "password=***&X-Session-Id=***" in queries


def test_the_query_of_a_line_is_kept_but_its_secrets() -> None:
    assert redacted(b"slice=0:100&points=2000") == "slice=0:100&points=2000"
    assert redacted(b"Access_Token=abc&secret=&sig=x") == "Access_Token=***&secret=***&sig=***"
    assert redacted(b"") == ""
    assert redacted(b"to%6Ben=abc&x=1") == "token=***&x=1"  # a name however it is spelled
    assert len(redacted(b"where=" + b"x" * 10_000)) < 2100  # a line stays a line
