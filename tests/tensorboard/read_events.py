#!/usr/bin/env python3
"""Checks, with TensorBoard's own readers, the event files write_events.cpp wrote into DIR.

Usage: read_events.py DIR            check an existing directory
       read_events.py --write EXE    run `EXE TMPDIR` first, then check TMPDIR

Both of TensorBoard's accumulators are used: the classic one (scalars from simple_value) and the
plugin one that `tensorboard --logdir` serves from (simple_value migrated to scalar tensors).
Prints "skipped: tensorboard not installed" and exits 0 when `import tensorboard` fails.
"""
import os
import subprocess
import sys
import tempfile

try:
    import tensorboard  # noqa: F401
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.backend.event_processing import plugin_event_accumulator
    from tensorboard.util import tensor_util
except ImportError:
    print("skipped: tensorboard not installed")
    sys.exit(0)

# What write_events.cpp wrote, after TensorBoard drops the first run's points past step 20.
EXPECTED = {
    "train/loss": [(10, 1.5), (20, 1.25), (30, 0.875), (40, 0.5)],
    "train/lr": [(10, 0.01), (20, 0.02), (30, 0.03), (40, 0.04)],
    "train/grad_norm": [(10, 0.5), (20, 0.5), (30, 0.5), (40, 0.5)],
    "train/samples_per_s": [(10, 1010.0), (20, 1020.0), (30, 1030.0), (40, 1040.0)],
    "eval/loss": [(40, 0.625)],
    "eval/accuracy": [(40, 0.75)],
    "power/watts": [(30, 0.25)],
}
STEPS = [10, 20, 30, 40]
for phase, ms in (("data", 0.25), ("forward", 1.0), ("backward", 2.0), ("sync", 0.5),
                  ("norm", 0.125), ("optimizer", 0.75)):
    EXPECTED["time_ms/" + phase] = [(step, ms) for step in STEPS]


def same(found, expected):
    """Steps equal, values equal to float precision."""
    return len(found) == len(expected) and all(
        fs == es and abs(fv - ev) <= 1e-6 * max(1.0, abs(ev))
        for (fs, fv), (es, ev) in zip(found, expected))


def classic(directory):
    acc = event_accumulator.EventAccumulator(directory, size_guidance={"scalars": 0})
    acc.Reload()
    found = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        assert all(e.wall_time > 1.6e9 for e in events), f"{tag}: bad wall_time"
        found[tag] = [(e.step, e.value) for e in events]
    return found


def plugin(directory):
    acc = plugin_event_accumulator.EventAccumulator(directory, size_guidance={"tensors": 0})
    acc.Reload()
    found = {}
    for tag in acc.Tags()["tensors"]:
        metadata = acc.SummaryMetadata(tag)
        assert metadata.plugin_data.plugin_name == "scalars", f"{tag}: not a scalar"
        found[tag] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                      for e in acc.Tensors(tag)]
    return found


def check(directory):
    files = sorted(f for f in os.listdir(directory) if "tfevents" in f)
    if len(files) != 2:
        return [f"expected 2 event files in {directory}, found {files}"]
    errors = []
    for name, read in (("event_accumulator", classic), ("plugin_event_accumulator", plugin)):
        found = {tag: points for tag, points in read(directory).items() if points}
        if set(found) != set(EXPECTED):
            errors.append(f"{name}: tags {sorted(found)} != {sorted(EXPECTED)}")
        for tag, expected in EXPECTED.items():
            if tag in found and not same(found[tag], expected):
                errors.append(f"{name}: {tag}: {found[tag]} != {expected}")
    return errors


def main(argv):
    if len(argv) == 3 and argv[1] == "--write":
        with tempfile.TemporaryDirectory() as directory:
            subprocess.run([argv[2], directory], check=True)
            errors = check(directory)
    elif len(argv) == 2:
        directory = argv[1]
        errors = check(directory)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        return 1
    print(f"ok: tensorboard {tensorboard.__version__} read {len(EXPECTED)} tags as written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
