"""S3 on loopback (moto's server), for the tests, the benchmarks and trying a shared store
without a cloud account. Needs the ``test`` extra (moto, flask)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loopback_s3() -> Iterator[str]:
    """Run moto's S3 server on a free port of 127.0.0.1 and yield its endpoint URL.

    >>> with loopback_s3() as endpoint:                       # doctest: +SKIP
    ...     la = labledger.init("lab", store="s3://bucket/x",
    ...                         storage_options={"endpoint_url": endpoint})
    """
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in (("AWS_ACCESS_KEY_ID", "loopback"), ("AWS_SECRET_ACCESS_KEY", "loopback")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str, name: str) -> str:
    """Make a bucket on the server at ``endpoint``; return its ``s3://`` URL."""
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"
