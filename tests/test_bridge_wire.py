"""Wire protocol: framing, array encoding, and the exact errors for malformed frames."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from sim.bridge import wire
from sim.bridge.wire import WireError, decode, encode


def test_roundtrip_header_and_arrays():
    arrays = {
        "f64": np.linspace(0, 1, 7),
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "u8": np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
        "b": np.array([True, False]),
        "scalar": np.asarray(0.25),
        "big_endian": np.arange(3, dtype=">f8"),
    }
    frame = encode("send_action", 17, {"obs": arrays, "note": "x"}, t=123.5)
    h, b = decode(frame)
    assert h == {"v": wire.PROTO_VERSION, "type": "send_action", "seq": 17, "t": 123.5}
    for k, a in arrays.items():
        got = b["obs"][k]
        assert got.shape == a.shape and np.array_equal(got, a), k
        assert got.flags.writeable
    assert b["obs"]["big_endian"].dtype == np.dtype("<f8")
    assert b["note"] == "x"


def test_object_arrays_are_refused_on_send():
    with pytest.raises(WireError, match="cannot send array of dtype object"):
        encode("send_action", 1, {"action": np.array([None, 1], dtype=object)})


def _raw(h, b=None) -> bytes:
    return msgpack.packb({"h": h, "b": b if b is not None else {}}, use_bin_type=True)


GOOD_H = {"v": 1, "type": "heartbeat", "seq": 3, "t": 1.0}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\xc1garbage", "not a msgpack message"),
        (msgpack.packb([1, 2]), "must be a map with keys 'h'"),
        (_raw({"v": 1, "type": "x", "seq": 1}), "header keys ['seq', 'type', 'v']"),
        (_raw({**GOOD_H, "seq": "7"}), "header 'seq' must be an int64, got '7'"),
        (_raw({**GOOD_H, "seq": True}), "header 'seq' must be an int64"),
        (_raw({**GOOD_H, "t": float("nan")}), "header 't' must be a finite number"),
        (_raw({**GOOD_H, "type": 5}), "header 'type' must be a string, got int"),
        (_raw({**GOOD_H, "v": "1"}), "header 'v' must be an int"),
        (
            _raw(GOOD_H, {"a": {"__nd__": 1, "dtype": "|O", "shape": [1], "data": b"x"}}),
            "array dtype '|O' not allowed",
        ),
        (
            _raw(GOOD_H, {"a": {"__nd__": 1, "dtype": "<f8", "shape": [3], "data": b"\0" * 8}}),
            "array of dtype <f8 shape [3] needs 24 bytes, got 8",
        ),
        (
            _raw(GOOD_H, {"a": {"__nd__": 1, "dtype": "<f8", "shape": [-1], "data": b""}}),
            "array shape [-1] must be a list of <= 4 non-negative ints",
        ),
        (
            _raw(GOOD_H, {"a": {"__nd__": 1, "dtype": "<f8", "shape": [1] * 5, "data": b"\0" * 8}}),
            "must be a list of <= 4 non-negative ints",
        ),
        (_raw(GOOD_H, {"a": {"__nd__": 1, "dtype": "<f8", "shape": [1]}}), "array map has keys"),
    ],
)
def test_malformed_frames_name_the_problem(frame, message):
    with pytest.raises(WireError) as e:
        decode(frame)
    assert message in str(e.value)


def test_oversized_frame_rejected_before_decoding():
    frame = encode("heartbeat", 1, {"pad": b"x" * 2000})
    with pytest.raises(WireError, match=rf"message of {len(frame)} bytes exceeds the maximum 1000"):
        decode(frame, max_bytes=1000)


def test_huge_declared_lengths_do_not_allocate():
    # a bin header claiming 2 GiB followed by nothing: must fail fast, not allocate
    frame = b"\x82\xa1h" + b"\xc6\x7f\xff\xff\xff"
    with pytest.raises(WireError, match="not a msgpack message"):
        decode(frame)


def test_require_names_message_and_key():
    with pytest.raises(WireError, match="send_action: body lacks 'action'"):
        wire.require({}, "action", np.ndarray, "send_action")
    with pytest.raises(WireError, match="reset: 'seed' must be int, got str"):
        wire.require({"seed": "1"}, "seed", int, "reset")
