"""labledger's server against Tiled's, serving the same 100 MiB float64 array from the same
HDF5 file (Tiled reads it in place with h5py; labledger ingested it into its Zarr store):
full reads and 1 MiB slices over loopback, each server in its own process. Target (issue 5):
at least 2x Tiled's throughput for both.

Tiled is not a dependency of labledger (their pins differ); give its command:

    python3 -m venv /tmp/tiled-venv && /tmp/tiled-venv/bin/pip install "tiled[server]" h5py
    python bench/tiled_compare.py --tiled /tmp/tiled-venv/bin/tiled [--slices 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from remote import served, write_big

SLICE = 131_072  # float64: 1 MiB


def tiled_server(tiled: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [tiled, "serve", "directory", "--public", "--port", str(port), str(folder)]
    quiet = subprocess.DEVNULL
    server = subprocess.Popen(command, stdout=quiet, stderr=quiet)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v1/metadata/big/data").is_success:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"`{tiled} serve directory` did not start")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiled", required=True, help="the tiled command (tiled[server])")
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-tiled-"))
    tiled_process = None
    try:
        (work / "files").mkdir()
        source = work / "files" / "big.h5"
        write_big(source, args.mb)
        la = ll.init(work / "archive")
        la.ingest([source], run=1)
        expected = la.runs[1].channels["data"][...]
        n = len(expected)
        tiled_process, tiled_url = tiled_server(args.tiled, work / "files")
        tiled = httpx.Client(base_url=tiled_url, timeout=120)
        full_url = "/api/v1/array/full/big/data"
        octets = {"format": "application/octet-stream"}

        def tiled_read(part: str | None = None) -> np.ndarray:
            params = {**octets, **({"slice": part} if part else {})}
            answer = tiled.get(full_url, params=params)
            answer.raise_for_status()
            return np.frombuffer(answer.content, dtype="<f8")

        with served(la, "process") as (url, key):
            channel = ll.connect(url, api_key=key).runs[1].channels["data"]
            assert np.array_equal(channel[...], expected)
            assert np.array_equal(tiled_read(), expected), "Tiled serves other values"
            full = {"labledger": [], "tiled": []}
            for _ in range(args.repeat):  # alternated: both see the same drift of the machine
                for name, read in (("labledger", lambda: channel[...]), ("tiled", tiled_read)):
                    start = time.perf_counter()
                    read()
                    full[name].append(time.perf_counter() - start)
            rng = random.Random(1)
            offsets = [rng.randrange(n - SLICE) for _ in range(args.slices)]
            parts = {"labledger": [], "tiled": []}
            for a in offsets:
                start = time.perf_counter()
                ours = channel[a : a + SLICE]
                parts["labledger"].append(time.perf_counter() - start)
                start = time.perf_counter()
                theirs = tiled_read(f"{a}:{a + SLICE}")
                parts["tiled"].append(time.perf_counter() - start)
                assert np.array_equal(ours, theirs)
        mb = expected.nbytes / 1e6
        t_ours, t_tiled = (statistics.median(full[k]) for k in ("labledger", "tiled"))
        print(f"full read of {mb:.0f} MB (median of {args.repeat}, alternated):")
        print(f"   labledger {1e3 * t_ours:7.1f} ms  {mb / t_ours:6.0f} MB/s")
        print(f"   Tiled     {1e3 * t_tiled:7.1f} ms  {mb / t_tiled:6.0f} MB/s")
        ratio = t_tiled / t_ours
        print(f"   labledger {ratio:.1f}x Tiled's throughput (target >= 2x: "
              + ("met)" if ratio >= 2 else "MISSED)"))  # fmt: skip
        s_ours, s_tiled = (statistics.median(parts[k]) for k in ("labledger", "tiled"))
        print(f"{args.slices} slices of 1 MiB at random offsets (median each):")
        print(f"   labledger {1e3 * s_ours:6.2f} ms   Tiled {1e3 * s_tiled:6.2f} ms")
        ratio = s_tiled / s_ours
        print(f"   labledger {ratio:.1f}x Tiled's throughput (target >= 2x: "
              + ("met)" if ratio >= 2 else "MISSED)"))  # fmt: skip
        la.close()
    finally:
        if tiled_process is not None:
            tiled_process.terminate()
            tiled_process.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
