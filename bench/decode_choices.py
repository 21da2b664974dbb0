"""Decoding the events, measured: per line into validated msgspec structs (what Yujing does), per line into dicts
with orjson (what the peers' aiokafka ceiling does), and into columns with polars and pyarrow (issue 16 asks to
measure and choose). polars and pyarrow are not dependencies: run it in a scratch environment.

    python -m venv /tmp/colvenv && /tmp/colvenv/bin/pip install polars pyarrow msgspec orjson
    /tmp/colvenv/bin/python bench/decode_choices.py [EVENTS.jsonl]     # default: the peers' data set
"""

import io
import sys
import time
from pathlib import Path

import msgspec
import orjson
import polars as pl
import pyarrow.json as pj

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from yujing.events import TOPIC_KINDS, event_kind

PATH = sys.argv[1] if len(sys.argv) > 1 else "/tmp/peer/ds/events.jsonl"
with open(PATH, "rb") as fh:
    lines = [line.rstrip(b"\n") for line in fh if line.strip()]
n = len(lines)


class _Probe(msgspec.Struct):
    event_type: str


def timed(name: str, work, reps: int = 3) -> None:  # type: ignore[no-untyped-def]
    best = 1e9
    for _ in range(reps):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    print(f"{name:55s} {1e6 * best / n:6.2f} us/event  ({n / best:,.0f} ev/s)")


probe = msgspec.json.Decoder(_Probe).decode
kinds = [event_kind(probe(line).event_type) for line in lines]
decoders = {kind: msgspec.json.Decoder(struct).decode for kind, struct in TOPIC_KINDS.items()}
blob = b"\n".join(lines)


def in_batches(read) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, n, 1000):
        read(io.BytesIO(b"\n".join(lines[i : i + 1000])))


print(f"{n:,} events from {PATH}")
timed("orjson.loads per line (dicts, no validation)", lambda: [orjson.loads(line) for line in lines])
timed("msgspec structs per line, validated (topic known)", lambda: [decoders[k](line) for k, line in zip(kinds, lines, strict=True)])
timed("polars.read_ndjson, whole file, columns", lambda: pl.read_ndjson(io.BytesIO(blob), infer_schema_length=None))
timed("polars.read_ndjson, batches of 1000", lambda: in_batches(lambda f: pl.read_ndjson(f, infer_schema_length=None)), reps=1)
timed("pyarrow.json.read_json, batches of 1000", lambda: in_batches(pj.read_json), reps=1)
