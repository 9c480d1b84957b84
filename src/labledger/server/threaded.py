"""A server in a background thread of this process: for tests, benchmarks and notebooks that
want a real HTTP endpoint on loopback without a second process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serving(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn in a thread; yield its URL; stop it on exit.
    ``port=0`` takes a free port.

    >>> from labledger.access import Access
    >>> from labledger.server import create_app
    >>> access = Access(la.catalog)
    >>> access.add_user("alice", project="default", role="reader", by="admin")
    >>> key = access.create_key("alice", scopes=["read"])
    >>> with serving(create_app(la)) as url:
    ...     remote = ll.connect(url, api_key=key)
    ...     print([r.number for r in remote.runs.search(gas="He")])
    ...     remote.close()
    [1265]
    """
    import uvicorn

    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"labledger-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise OSError(f"the server on {host}:{port} did not start (is the port taken?)")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
