"""msgpack encoding of segments: columns travel as raw bytes + dtype string + shape; never pickle.

Record layout (one msgpack array):
    ["ami.seg", schema_version, [actor_id, env_id, episode_id, first_step, policy_version],
     {column: [dtype_str, shape, raw_bytes], ...}]

`decode_segment` trusts nothing: it bounds the record size and every msgpack container, accepts only string map
keys, only whitelisted little-endian/plain dtypes, and checks that every column's bytes match its dtype × shape
and that all columns share one length. Anything else — garbage bytes, a pickle payload, a truncated value, a
record from another program — raises `CorruptRecord`, and nothing is ever evaluated.
"""

from __future__ import annotations

import math

import msgpack
import numpy as np

from memory.core import REQUIRED_COLUMNS, SCHEMA_VERSION, Segment, SegmentMeta

TAG = "ami.seg"
DEFAULT_MAX_RECORD_BYTES = 1 << 30  # 1 GiB
MAX_COLUMNS = 256
MAX_NDIM = 8
MAX_NAME_LEN = 256

# dtype.str values we accept; byte order is pinned so a record decodes the same on every machine.
ALLOWED_DTYPES = frozenset(
    np.dtype(t).newbyteorder("<").str
    for t in (
        "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
        "float16", "float32", "float64",
    )
)


class CorruptRecord(ValueError):
    """A stored value is not a well-formed segment record (foreign, truncated, malicious or too large)."""


def _column(name: str, arr: np.ndarray) -> list:
    a = np.asarray(arr)
    dt = a.dtype
    if dt.str not in ALLOWED_DTYPES:
        swapped = dt.newbyteorder("<")
        if dt.kind in "biuf" and swapped.str in ALLOWED_DTYPES:
            a = a.astype(swapped)
        else:
            raise ValueError(f"column {name!r}: dtype {dt} is not encodable (allowed: bool, ints, floats)")
    a = np.ascontiguousarray(a)
    return [a.dtype.str, list(a.shape), a.data.cast("B") if a.ndim else a.tobytes()]


def encode_segment(segment: Segment) -> bytes:
    """Serialize a segment to msgpack bytes (validates it first)."""
    segment.validate()
    m = segment.meta
    cols = {str(k): _column(k, v) for k, v in segment.data.items()}
    rec = [TAG, int(m.schema_version),
           [int(m.actor_id), str(m.env_id), int(m.episode_id), int(m.first_step), int(m.policy_version)], cols]
    return msgpack.packb(rec, use_bin_type=True)


def _fail(msg: str) -> CorruptRecord:
    return CorruptRecord(msg)


def _decode_column(name: object, spec: object, max_bytes: int) -> tuple[str, np.ndarray]:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LEN:
        raise _fail("bad column name")
    if not isinstance(spec, list) or len(spec) != 3:
        raise _fail(f"column {name!r}: bad spec")
    dts, shape, buf = spec
    if not isinstance(dts, str) or dts not in ALLOWED_DTYPES:
        raise _fail(f"column {name!r}: dtype {dts!r} not allowed")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= MAX_NDIM
            or not all(type(d) is int and 0 <= d <= max_bytes for d in shape)):
        raise _fail(f"column {name!r}: bad shape")
    if not isinstance(buf, bytes):
        raise _fail(f"column {name!r}: payload is not bytes")
    dt = np.dtype(dts)
    if math.prod(shape) * dt.itemsize != len(buf):
        raise _fail(f"column {name!r}: {len(buf)} bytes do not match {dts}{shape}")
    return name, np.frombuffer(buf, dtype=dt).reshape(shape)


def decode_segment(raw: bytes | bytearray | memoryview, max_buffer_size: int = DEFAULT_MAX_RECORD_BYTES) -> Segment:
    """Parse bytes written by encode_segment. Raises CorruptRecord on anything else.

    The returned arrays are read-only views on the record's bytes (zero copy); copy them before mutating.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise _fail(f"record must be bytes, got {type(raw).__name__}")
    if len(raw) > max_buffer_size:
        raise _fail(f"record of {len(raw)} bytes exceeds max_buffer_size={max_buffer_size}")
    if len(raw) < 2 or raw[0] != 0x94:  # fixarray of 4: rejects pickles (0x80 / '('/'c'...) and most junk cheaply
        raise _fail("not an ami segment record")
    try:
        rec = msgpack.unpackb(
            raw, raw=False, strict_map_key=True, use_list=True,
            max_str_len=max(MAX_NAME_LEN, 4096), max_bin_len=max_buffer_size, max_array_len=MAX_NDIM + 8,
            max_map_len=MAX_COLUMNS, max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            UnicodeDecodeError, OverflowError) as e:  # ExtraData etc. subclass ValueError; listed for clarity
        raise _fail(f"undecodable record: {type(e).__name__}") from None
    if not isinstance(rec, list) or len(rec) != 4 or rec[0] != TAG:
        raise _fail("not an ami segment record")
    _, schema, meta, cols = rec
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise _fail(f"unsupported schema version {schema!r}")
    if (not isinstance(meta, list) or len(meta) != 5 or not isinstance(meta[1], str)
            or not all(type(meta[i]) is int for i in (0, 2, 3, 4))):
        raise _fail("bad metadata")
    if not isinstance(cols, dict) or not cols:
        raise _fail("bad columns")
    data = dict(_decode_column(k, v, max_buffer_size) for k, v in cols.items())
    missing = [c for c in REQUIRED_COLUMNS if c not in data]
    lengths = {len(v) for v in data.values()}
    if missing or len(lengths) != 1 or 0 in lengths:
        raise _fail(f"inconsistent columns (missing {missing}, lengths {sorted(lengths)})")
    return Segment(data=data, meta=SegmentMeta(meta[0], meta[1], meta[2], meta[3], meta[4], schema))
