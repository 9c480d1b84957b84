"""One signal by name against reading the raw channel and calibrating it by hand with numpy.

Target (issue 3): ``run.signal(name)`` at no more than 1.1x the time of reading the raw channel
and applying the same DAQ scaling and calibration by hand. Both start from the archive and a run
number, as a user does; both read the same stored channel. Measured on a campaign shot (35,000
samples) and on a long acquisition (``--samples``, 20 million by default: 40 MB of int16).

    python bench/signal_read.py [--samples 20000000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from labledger.sim import build
from labledger.sim.campaign import CALIBRATIONS
from labledger.sim.testbed import VOLTS_PER_COUNT
from timing import median_time

SIGNAL, CHANNEL, CALIBRATION = "RF_Pfwd", "PXI M6251/ai0", "rf_pfwd"


# a DAQmx channel's properties: counts with linear scaling to volts, 50 kHz waveform timing
DAQMX = {
    "NI_Number_Of_Scales": 1,
    "NI_Scale[0]_Scale_Type": "Linear",
    "NI_Scale[0]_Linear_Slope": VOLTS_PER_COUNT,
    "NI_Scale[0]_Linear_Y_Intercept": 0.0,
    "unit_string": "V",
    "wf_increment": 2e-5,
    "wf_start_offset": 0.0,
}


def write_long_shot(path: Path, samples: int) -> None:
    """A long acquisition on the ISHTAR DAQ card: ai0..ai7, counts with DAQmx linear scaling."""
    rng = np.random.default_rng(0)
    props = DAQMX
    segment = 1 << 20
    with TdmsWriter(path) as writer:
        for start in range(0, samples, segment):
            n = min(segment, samples - start)
            counts = [rng.integers(-3000, 3000, n, dtype=np.int16) for _ in range(8)]
            channels = [ChannelObject("PXI M6251", f"ai{c}", counts[c], props) for c in range(8)]
            head = [RootObject({"gas": "Ar"}), GroupObject("PXI M6251")] if start == 0 else []
            writer.write_segment(head + channels)


def by_hand(la: ll.Archive, number: int) -> np.ndarray:
    """What a user does without labledger's signal resolution: knows the port, the scaling and
    the calibration, and applies them."""
    channel = la.runs[number].channels[CHANNEL]
    slope = channel.attrs["NI_Scale[0]_Linear_Slope"]
    intercept = channel.attrs["NI_Scale[0]_Linear_Y_Intercept"]
    gain = CALIBRATIONS[CALIBRATION]["gain"]
    volts = channel[:] * slope + intercept
    return volts * gain + CALIBRATIONS[CALIBRATION].get("offset", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-signal-"))
    try:
        la = ll.init(work / "archive")
        build(la, work / "daq", [1233])
        long_shot = work / "daq" / "01300_Long.tdms"
        write_long_shot(long_shot, args.samples)
        la.ingest([long_shot])
        print(f"{'case':<28}{'by hand':>12}{'run.signal':>14}{'ratio':>8}")
        for label, number, repeat in (
            ("campaign shot, 35,000", 1233, args.repeat * 20),
            (f"long, {args.samples:,}", 1300, args.repeat),
        ):
            np.testing.assert_allclose(la.runs[number].signal(SIGNAL).values, by_hand(la, number))
            hand = median_time(lambda n=number: by_hand(la, n), repeat)
            ours = median_time(lambda n=number: la.runs[n].signal(SIGNAL), repeat)
            print(f"{label:<28}{hand * 1e3:>10.2f}ms{ours * 1e3:>12.2f}ms{ours / hand:>8.2f}")
        print("target: ratio <= 1.1")
        la.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
