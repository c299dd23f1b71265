"""msgpack segment codec: exact round trips and strict rejection of anything foreign."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from ami.memory.codec import CorruptRecord, decode_segment, encode_segment, read_layout
from ami.memory.core import Segment, SegmentMeta

# A classic pickle exploit (protocol 0): unpickling it would call os.system. Written out by hand so no pickle
# module is involved; test_replay_faults proves it is live in a throwaway subprocess.
PICKLE_PAYLOAD = b"cos\nsystem\n(S'true'\ntR."


def _segment(length: int = 5) -> Segment:
    rng = np.random.default_rng(0)
    data = {
        "obs": rng.standard_normal((length, 3)).astype(np.float32),
        "action": rng.standard_normal((length, 2, 2)).astype(np.float32),
        "reward": rng.standard_normal(length).astype(np.float32),
        "terminated": rng.random(length) < 0.3,
        "truncated": np.zeros(length, bool),
        "next_obs": rng.standard_normal((length, 3)).astype(np.float32),
        "pixels": rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8),
        "count": rng.integers(-(2**62), 2**62, (length,), dtype=np.int64),
        "f64": rng.standard_normal((length, 1, 1, 2)),
        "u16": rng.integers(0, 60000, (length, 4), dtype=np.uint16),
    }
    return Segment(data, SegmentMeta(actor_id=7, env_id="Pendulum-v1", episode_id=12, first_step=40,
                                     policy_version=3))


def test_round_trip_dtypes_and_shapes():
    seg = _segment()
    out = decode_segment(encode_segment(seg))
    assert out.meta == seg.meta
    assert set(out.data) == set(seg.data)
    for k, v in seg.data.items():
        assert out.data[k].dtype == v.dtype, k
        assert out.data[k].shape == v.shape, k
        np.testing.assert_array_equal(out.data[k], v)


def test_dict_observations_travel_as_flat_columns_and_a_missing_one_is_refused(monkeypatch):
    seg = _segment()
    data = {k: v for k, v in seg.data.items() if k not in ("obs", "next_obs")}
    for side in ("obs", "next_obs"):
        data[f"{side}.observation"] = seg.data[side]
        data[f"{side}.goal"] = seg.data[side] + 1
    out = decode_segment(encode_segment(Segment(data, seg.meta)))
    np.testing.assert_array_equal(out.data["next_obs.goal"], seg.data["next_obs"] + 1)
    del data["next_obs.observation"], data["next_obs.goal"]
    monkeypatch.setattr(Segment, "validate", lambda self: None)  # a foreign writer that checks nothing
    with pytest.raises(CorruptRecord, match="next_obs"):
        decode_segment(encode_segment(Segment(data, seg.meta)))


def test_non_contiguous_and_big_endian_inputs_are_normalised():
    seg = _segment()
    data = dict(seg.data)
    data["obs"] = np.asfortranarray(data["obs"])
    data["reward"] = data["reward"].astype(">f4")
    data["action"] = data["action"][:, :, ::-1]
    out = decode_segment(encode_segment(Segment(data, seg.meta)))
    assert out.data["reward"].dtype == np.dtype("<f4")
    for k in ("obs", "reward", "action"):
        np.testing.assert_array_equal(out.data[k], data[k])


def test_unencodable_dtype_is_refused():
    seg = _segment()
    data = dict(seg.data, extra=np.array(["a"] * 5, dtype=object))
    with pytest.raises(ValueError):
        encode_segment(Segment(data, seg.meta))


def _tamper(fn) -> bytes:
    rec = msgpack.unpackb(encode_segment(_segment()), raw=False)
    fn(rec)
    return msgpack.packb(rec, use_bin_type=True)


BAD_RECORDS = {
    "empty": b"",
    "garbage": bytes(range(256)) * 4,
    "pickle_protocol0": PICKLE_PAYLOAD,
    "pickle_protocol2": b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.",
    "json": b'{"obs": [1, 2, 3]}',
    "truncated": encode_segment(_segment())[:-10],
    "trailing_bytes": encode_segment(_segment()) + b"\x00",
    "wrong_tag": _tamper(lambda r: r.__setitem__(0, "other")),
    "wrong_schema": _tamper(lambda r: r.__setitem__(1, 99)),
    "object_dtype": _tamper(lambda r: r[3][0].__setitem__(1, "|O")),
    "big_endian_dtype": _tamper(lambda r: r[3][0].__setitem__(1, ">f4")),
    "shape_bytes_mismatch": _tamper(lambda r: r[3][0].__setitem__(2, [5, 4])),
    "negative_shape": _tamper(lambda r: r[3][0].__setitem__(2, [-5, -3])),
    "unequal_lengths": _tamper(lambda r: r[3][0].__setitem__(2, [15, 1])),
    "missing_column": _tamper(lambda r: (r[3].pop(2), r.pop(6))),
    "duplicate_column": _tamper(lambda r: r[3][1].__setitem__(0, "obs")),
    "missing_payload": _tamper(lambda r: r.pop()),
    "bad_meta": _tamper(lambda r: r[2].__setitem__(0, "seven")),
    "payload_not_bytes": _tamper(lambda r: r.__setitem__(6, "text")),
    "ext_type": msgpack.packb([msgpack.ExtType(1, b"x"), 1, 2, 3, 4]),
    "map_instead_of_specs": msgpack.packb(["ami.seg", 1, [0, "e", 0, 0, 0], {1: ["<f4", [1]]}, b"\0\0\0\0"]),
}


@pytest.mark.parametrize("name", sorted(BAD_RECORDS))
def test_foreign_or_corrupt_values_raise_corrupt_record(name):
    with pytest.raises(CorruptRecord):
        decode_segment(BAD_RECORDS[name])


def test_non_bytes_input_raises_corrupt_record():
    with pytest.raises(CorruptRecord):
        decode_segment("a string")  # type: ignore[arg-type]


def test_max_buffer_size_is_enforced():
    raw = encode_segment(_segment())
    assert decode_segment(raw, max_buffer_size=len(raw)).meta.actor_id == 7
    with pytest.raises(CorruptRecord):
        decode_segment(raw, max_buffer_size=len(raw) - 1)


def test_decoded_arrays_are_read_only_views():
    out = decode_segment(encode_segment(_segment()))
    with pytest.raises(ValueError):
        out.data["obs"][0, 0] = 1.0


def test_layout_from_a_prefix_locates_every_row():
    seg = _segment(7)
    raw = encode_segment(seg)
    lay = None
    for n in range(2, len(raw)):
        lay = read_layout(raw[:n], len(raw))
        if lay is not None:
            break
    assert lay is not None and n < 1024, n
    assert lay.length == 7 and [c[0] for c in lay.columns] == list(seg.data)
    for k, (name, dt, shape, _, _) in enumerate(lay.columns):
        for a, b in ((0, 7), (2, 5), (6, 7)):
            lo, hi = lay.row_range(k, a, b)
            rows = np.frombuffer(raw[lo:hi + 1], dt).reshape(b - a, *shape[1:])
            np.testing.assert_array_equal(rows, seg.data[name][a:b])


@pytest.mark.parametrize("name", ["garbage", "pickle_protocol0", "pickle_protocol2", "json", "wrong_tag",
                                  "object_dtype", "missing_column", "duplicate_column", "bad_meta"])
def test_layout_rejects_foreign_headers(name):
    raw = BAD_RECORDS[name]
    with pytest.raises(CorruptRecord):
        read_layout(raw[:4096], len(raw))


def test_layout_rejects_size_mismatch():
    raw = encode_segment(_segment())
    with pytest.raises(CorruptRecord):
        read_layout(raw[:4096], len(raw) + 1)
