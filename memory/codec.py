"""msgpack encoding of segments: columns travel as raw bytes + dtype string + shape; never pickle.

Record layout (one msgpack array of 4 + k items):
    ["ami.seg", schema_version, [actor_id, env_id, episode_id, first_step, policy_version],
     [[column, dtype_str, shape], ... k specs], raw_bytes_0, ..., raw_bytes_{k-1}]
All column specs come before the data, so the byte offset of any row of any column follows from a short prefix
of the record (`read_layout`): a sampler can fetch just the rows of a window with GETRANGE.

`decode_segment` trusts nothing: it bounds the record size and every msgpack container, accepts only string map
keys, only whitelisted little-endian/plain dtypes, and checks that every column's bytes match its dtype × shape
and that all columns share one length. Anything else — garbage bytes, a pickle payload, a truncated value, a
record from another program — raises `CorruptRecord`, and nothing is ever evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgpack
import numpy as np

from ami.memory.core import SCHEMA_VERSION, Segment, SegmentMeta, missing_columns

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


def _column(name: str, arr: np.ndarray) -> tuple[list, memoryview | bytes]:
    a = np.asarray(arr)
    dt = a.dtype
    if dt.str not in ALLOWED_DTYPES:
        swapped = dt.newbyteorder("<")
        if dt.kind in "biuf" and swapped.str in ALLOWED_DTYPES:
            a = a.astype(swapped)
        else:
            raise ValueError(f"column {name!r}: dtype {dt} is not encodable (allowed: bool, ints, floats)")
    a = np.ascontiguousarray(a)
    return [str(name), a.dtype.str, list(a.shape)], (a.data.cast("B") if a.ndim else a.tobytes())


def encode_segment(segment: Segment) -> bytes:
    """Serialize a segment to msgpack bytes (validates it first)."""
    segment.validate()
    m = segment.meta
    specs, bufs = zip(*(_column(k, v) for k, v in segment.data.items()), strict=True)
    rec = [TAG, int(m.schema_version),
           [int(m.actor_id), str(m.env_id), int(m.episode_id), int(m.first_step), int(m.policy_version)],
           list(specs), *bufs]
    return msgpack.packb(rec, use_bin_type=True)


def _fail(msg: str) -> CorruptRecord:
    return CorruptRecord(msg)


def _check_spec(spec: object, max_bytes: int) -> tuple[str, np.dtype, tuple[int, ...], int]:
    """(name, dtype, shape, byte size) of a column spec, or CorruptRecord."""
    if not isinstance(spec, list) or len(spec) != 3:
        raise _fail("bad column spec")
    name, dts, shape = spec
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LEN:
        raise _fail("bad column name")
    if not isinstance(dts, str) or dts not in ALLOWED_DTYPES:
        raise _fail(f"column {name!r}: dtype {dts!r} not allowed")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= MAX_NDIM
            or not all(type(d) is int and 0 <= d <= max_bytes for d in shape)):
        raise _fail(f"column {name!r}: bad shape")
    dt = np.dtype(dts)
    size = math.prod(shape) * dt.itemsize
    if size > max_bytes:
        raise _fail(f"column {name!r} too large")
    return name, dt, tuple(shape), size


def _check_header(schema: object, meta: object, specs: object, max_bytes: int) -> list:
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise _fail(f"unsupported schema version {schema!r}")
    if (not isinstance(meta, list) or len(meta) != 5 or not isinstance(meta[1], str)
            or not all(type(meta[i]) is int for i in (0, 2, 3, 4))):
        raise _fail("bad metadata")
    if not isinstance(specs, list) or not 0 < len(specs) <= MAX_COLUMNS:
        raise _fail("bad column specs")
    cols = [_check_spec(c, max_bytes) for c in specs]
    names = [c[0] for c in cols]
    lengths = {c[2][0] for c in cols}
    missing = missing_columns(names)
    if missing or len(set(names)) != len(names) or len(lengths) != 1 or 0 in lengths:
        raise _fail(f"inconsistent columns (missing {missing}, lengths {sorted(lengths)})")
    return cols


def decode_segment(raw: bytes | bytearray | memoryview, max_buffer_size: int = DEFAULT_MAX_RECORD_BYTES) -> Segment:
    """Parse bytes written by encode_segment. Raises CorruptRecord on anything else.

    The returned arrays are read-only views on the record's bytes (zero copy); copy them before mutating.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise _fail(f"record must be bytes, got {type(raw).__name__}")
    if len(raw) > max_buffer_size:
        raise _fail(f"record of {len(raw)} bytes exceeds max_buffer_size={max_buffer_size}")
    if len(raw) < 2 or not (0x95 <= raw[0] <= 0x9F or raw[0] == 0xDC):  # an array of ≥ 5: rejects pickles
        # (0x80 / '(' / 'c' ...) and most junk cheaply
        raise _fail("not an ami segment record")
    try:
        rec = msgpack.unpackb(
            raw, raw=False, strict_map_key=True, use_list=True,
            max_str_len=max(MAX_NAME_LEN, 4096), max_bin_len=max_buffer_size, max_array_len=MAX_COLUMNS + 8,
            max_map_len=0, max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            UnicodeDecodeError, OverflowError) as e:  # ExtraData etc. subclass ValueError; listed for clarity
        raise _fail(f"undecodable record: {type(e).__name__}") from None
    if not isinstance(rec, list) or len(rec) < 5 or rec[0] != TAG:
        raise _fail("not an ami segment record")
    _, schema, meta, specs, *bufs = rec
    cols = _check_header(schema, meta, specs, max_buffer_size)
    if len(bufs) != len(cols):
        raise _fail("column count differs from the specs")
    data = {}
    for (name, dt, shape, size), buf in zip(cols, bufs, strict=True):
        if not isinstance(buf, bytes) or len(buf) != size:
            raise _fail(f"column {name!r}: payload does not match {dt.str}{list(shape)}")
        data[name] = np.frombuffer(buf, dtype=dt).reshape(shape)
    return Segment(data=data, meta=SegmentMeta(meta[0], meta[1], meta[2], meta[3], meta[4], schema))


def _bin_header(size: int) -> int:
    return 2 if size < 1 << 8 else 3 if size < 1 << 16 else 5


@dataclass(frozen=True)
class Layout:
    """Where each column's rows lie inside an encoded record (from read_layout)."""

    length: int
    """Rows (steps) of the segment."""
    columns: tuple[tuple[str, np.dtype, tuple[int, ...], int, int], ...]
    """(name, dtype, shape, byte offset of row 0, bytes per row) per column, in record order."""
    policy_version: int
    """Metadata needed by the sampler."""

    def row_range(self, k: int, start: int, stop: int) -> tuple[int, int]:
        """Inclusive byte range of rows [start, stop) of column k (for GETRANGE)."""
        _, _, _, off, rb = self.columns[k]
        return off + start * rb, off + stop * rb - 1


def read_layout(prefix: bytes, total_bytes: int, max_buffer_size: int = DEFAULT_MAX_RECORD_BYTES) -> Layout | None:
    """Column offsets of a record from its first bytes (None: the prefix is too short, fetch more).

    Raises CorruptRecord unless the specs are valid and the data they describe exactly fills `total_bytes`.
    """
    if total_bytes > max_buffer_size or len(prefix) < 2:
        raise _fail("record missing or too large")
    if not (0x95 <= prefix[0] <= 0x9F or prefix[0] == 0xDC):
        raise _fail("not an ami segment record")
    up = msgpack.Unpacker(raw=False, strict_map_key=True, use_list=True, max_buffer_size=max(len(prefix), 1),
                          max_str_len=4096, max_bin_len=0, max_array_len=MAX_COLUMNS + 8, max_map_len=0,
                          max_ext_len=0)
    up.feed(prefix)
    try:
        n = up.read_array_header()
        tag, schema, meta, specs = up.unpack(), up.unpack(), up.unpack(), up.unpack()
    except msgpack.OutOfData:
        return None
    except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError, UnicodeDecodeError) as e:
        raise _fail(f"undecodable record header: {type(e).__name__}") from None
    if tag != TAG:
        raise _fail("not an ami segment record")
    cols = _check_header(schema, meta, specs, max_buffer_size)
    if n != 4 + len(cols):
        raise _fail("column count differs from the specs")
    off, out = up.tell(), []
    for name, dt, shape, size in cols:
        off += _bin_header(size)
        out.append((name, dt, shape, off, size // shape[0]))
        off += size
    if off != total_bytes:
        raise _fail("record size does not match its column specs")
    return Layout(cols[0][2][0], tuple(out), meta[4])
