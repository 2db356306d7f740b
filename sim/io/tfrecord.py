"""TFRecord framing, CRC-32C and a hand-written ``tf.train.Example`` codec (no TensorFlow/protobuf).

TFRecord file = a sequence of records, each framed as (all little-endian)::

    uint64 length
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``masked(c) = ((c >> 15) | (c << 17)) + 0xA282EAD8  (mod 2**32)`` and CRC-32C the Castagnoli
CRC (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF).

``tf.train.Example`` (tensorflow/core/example/{example,feature}.proto), in protobuf wire format::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }   # entry: {string key = 1; Feature value = 2}
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                             Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }   # packed or unpacked both accepted
    Int64List { repeated int64 value = 1 [packed = true]; }

Decoded features are ``dict[str, list[bytes] | np.ndarray(float32) | np.ndarray(int64)]``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from sim.errors import FormatError

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def _make_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[i] = c
    return table


_TABLE = _make_table()
_TABLE_LIST = [int(x) for x in _TABLE]


def _raw_update(state: int, data: bytes) -> int:
    """Feed bytes into the (reflected, un-inverted) CRC register, one byte at a time."""
    t = _TABLE_LIST
    for b in data:
        state = (state >> 8) ^ t[(state ^ b) & 0xFF]
    return state


@cache
def _shift_tables(n: int) -> tuple[np.ndarray, ...]:
    """Lookup tables applying the linear map 'feed n zero bytes' to a 32-bit register.

    Returns four 256-entry tables, one per register byte; the map is XOR of the four lookups.
    """
    basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
    state = basis.copy()
    for _ in range(n):
        state = (state >> np.uint32(8)) ^ _TABLE[state & np.uint32(0xFF)]
    cols = [int(x) for x in state]  # image of each basis bit
    tables = []
    for byte in range(4):
        tab = np.zeros(256, dtype=np.uint32)
        for v in range(256):
            acc = 0
            for bit in range(8):
                if v >> bit & 1:
                    acc ^= cols[byte * 8 + bit]
            tab[v] = acc
        tables.append(tab)
    return tuple(tables)


def _shift(state: int, tables: tuple[np.ndarray, ...]) -> int:
    return int(
        tables[0][state & 0xFF]
        ^ tables[1][(state >> 8) & 0xFF]
        ^ tables[2][(state >> 16) & 0xFF]
        ^ tables[3][state >> 24]
    )


_LANE_LEN = 256  # bytes per lane in the vectorized path


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C (Castagnoli) of ``data``, as used by TFRecord, LevelDB and iSCSI.

    Large inputs are split into equal lanes whose registers are advanced together with numpy;
    the lanes are then joined with the CRC's linearity (register shifted over the following
    bytes), which gives the same value as the byte-serial algorithm.
    """
    buf = bytes(data)
    n = len(buf)
    if n < 4 * _LANE_LEN:
        return _raw_update(_U32, buf) ^ _U32
    lanes = n // _LANE_LEN
    body = np.frombuffer(buf, dtype=np.uint8, count=lanes * _LANE_LEN).reshape(lanes, _LANE_LEN)
    state = np.zeros(lanes, dtype=np.uint32)
    state[0] = _U32
    for j in range(_LANE_LEN):
        state = (state >> np.uint32(8)) ^ _TABLE[(state ^ body[:, j]) & np.uint32(0xFF)]
    tables = _shift_tables(_LANE_LEN)
    reg = int(state[0])
    for lane in state[1:]:
        reg = _shift(reg, tables) ^ int(lane)
    reg = _raw_update(reg, buf[lanes * _LANE_LEN :])
    return reg ^ _U32


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & _U32


# --------------------------------------------------------------------------------------------
# TFRecord framing


def iter_tfrecord(path: str | Path, verify: bool = True) -> Iterator[bytes]:
    """Yield the payload of every record in a TFRecord file.

    Args:
        path: TFRecord file (uncompressed).
        verify: check both masked CRC-32C values of every record.

    Raises:
        FormatError: truncated record or CRC mismatch; the message names the file, the record
            index and its byte offset.
    """
    path = Path(path)
    with open(path, "rb") as f:
        offset, index = 0, 0
        while head := f.read(12):
            where = f"{path}: record {index} at byte {offset}"
            if len(head) < 12:
                raise FormatError(
                    f"{where}: truncated header ({len(head)} bytes left, expected 12: "
                    "uint64 length + uint32 masked crc32c)"
                )
            (length,) = struct.unpack("<Q", head[:8])
            (len_crc,) = struct.unpack("<I", head[8:])
            if verify and masked_crc32c(head[:8]) != len_crc:
                raise FormatError(
                    f"{where}: length CRC mismatch (stored {len_crc:#010x}, computed "
                    f"{masked_crc32c(head[:8]):#010x}); expected a valid TFRecord frame "
                    "(corrupt file?)"
                )
            body = f.read(length + 4)
            if len(body) < length + 4:
                raise FormatError(
                    f"{where}: truncated record (needs {length + 16} bytes, "
                    f"{len(body) + 12} left); expected length + data + uint32 masked crc32c"
                )
            payload = body[:length]
            (data_crc,) = struct.unpack("<I", body[length:])
            if verify and masked_crc32c(payload) != data_crc:
                raise FormatError(
                    f"{where}: data CRC mismatch (stored {data_crc:#010x}, computed "
                    f"{masked_crc32c(payload):#010x}); expected crc32c of the {length}-byte "
                    "payload (corrupt file?)"
                )
            yield payload
            offset += 16 + length
            index += 1


def frame_record(payload: bytes) -> bytes:
    """One TFRecord frame (header, payload, CRC) for ``payload``."""
    head = struct.pack("<Q", len(payload))
    return (
        head
        + struct.pack("<I", masked_crc32c(head))
        + payload
        + struct.pack("<I", masked_crc32c(payload))
    )


def write_tfrecord(path: str | Path, payloads: Sequence[bytes]) -> None:
    """Write records to a TFRecord file (no atomic rename; used by tests and tools)."""
    with open(path, "wb") as f:
        for p in payloads:
            f.write(frame_record(p))


# --------------------------------------------------------------------------------------------
# protobuf wire format


class _WireError(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise _WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of a serialized message; skips nothing."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wtype = key >> 3, key & 7
        if wtype == 0:
            val, pos = _varint(buf, pos)
        elif wtype == 1:
            if pos + 8 > n:
                raise _WireError("truncated 64-bit field")
            val, pos = buf[pos : pos + 8], pos + 8
        elif wtype == 2:
            ln, pos = _varint(buf, pos)
            if pos + ln > n:
                raise _WireError(f"length-delimited field {num} runs past the end")
            val, pos = buf[pos : pos + ln], pos + ln
        elif wtype == 5:
            if pos + 4 > n:
                raise _WireError("truncated 32-bit field")
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _WireError(f"unsupported wire type {wtype} (field {num})")
        yield num, wtype, val


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_feature(buf: bytes) -> list[bytes] | np.ndarray:
    out: list[bytes] | np.ndarray = []
    for num, _, val in _fields(buf):
        if num == 1:  # BytesList
            out = [bytes(v) for n2, w2, v in _fields(val) if n2 == 1 and w2 == 2]
        elif num == 2:  # FloatList
            parts: list[np.ndarray] = []
            for n2, w2, v in _fields(val):
                if n2 != 1:
                    continue
                if w2 == 2:
                    if len(v) % 4:
                        raise _WireError("packed float list length not a multiple of 4")
                    parts.append(np.frombuffer(v, dtype="<f4"))
                elif w2 == 5:
                    parts.append(np.frombuffer(v, dtype="<f4"))
                else:
                    raise _WireError(f"float list value with wire type {w2}")
            out = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            out = out.astype(np.float32)
        elif num == 3:  # Int64List
            vals: list[int] = []
            for n2, w2, v in _fields(val):
                if n2 != 1:
                    continue
                if w2 == 2:
                    p = 0
                    while p < len(v):
                        x, p = _varint(v, p)
                        vals.append(_signed64(x))
                elif w2 == 0:
                    vals.append(_signed64(int(v)))
                else:
                    raise _WireError(f"int64 list value with wire type {w2}")
            out = np.asarray(vals, dtype=np.int64)
    return out


def parse_example(buf: bytes) -> dict[str, list[bytes] | np.ndarray]:
    """Decode a serialized ``tf.train.Example`` into {feature name: values}.

    Raises:
        FormatError: malformed wire data (the caller adds file and record to the message).
    """
    out: dict[str, list[bytes] | np.ndarray] = {}
    try:
        for num, wtype, feats in _fields(buf):
            if num != 1 or wtype != 2:
                continue
            for n2, w2, entry in _fields(feats):
                if n2 != 1 or w2 != 2:
                    continue
                key, value = "", b""
                for n3, w3, v in _fields(entry):
                    if n3 == 1 and w3 == 2:
                        key = bytes(v).decode("utf-8")
                    elif n3 == 2 and w3 == 2:
                        value = v
                out[key] = _decode_feature(value)
    except (_WireError, UnicodeDecodeError) as e:
        raise FormatError(f"malformed tf.train.Example: {e}") from e
    return out


def _enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_len(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_example(
    features: Mapping[str, Sequence[bytes] | np.ndarray | Sequence[float] | Sequence[int]],
    packed: bool = True,
) -> bytes:
    """Serialize {name: values} as a ``tf.train.Example``.

    bytes/str sequences become BytesList, float arrays FloatList (float32), integer/bool arrays
    Int64List. ``packed=False`` writes repeated scalars one field each (also valid protobuf).
    """
    entries = b""
    for key, values in features.items():
        if isinstance(values, (list, tuple)) and values and isinstance(values[0], (bytes, str)):
            items = [v.encode() if isinstance(v, str) else v for v in values]
            feat = _enc_len(1, b"".join(_enc_len(1, v) for v in items))
        else:
            arr = np.asarray(values).ravel()
            if arr.dtype.kind == "f":
                raw = arr.astype("<f4")
                if packed:
                    body = _enc_len(1, raw.tobytes())
                else:
                    body = b"".join(_enc_varint(1 << 3 | 5) + x.tobytes() for x in raw)
                feat = _enc_len(2, body)
            elif arr.dtype.kind in "iub" or arr.size == 0:
                ints = [int(x) for x in arr.astype(np.int64)]
                if packed:
                    body = _enc_len(1, b"".join(_enc_varint(x) for x in ints))
                else:
                    body = b"".join(_enc_varint(1 << 3 | 0) + _enc_varint(x) for x in ints)
                feat = _enc_len(3, body)
            else:
                raise TypeError(f"feature {key!r}: cannot encode dtype {arr.dtype}")
        entry = _enc_len(1, key.encode()) + _enc_len(2, feat)
        entries += _enc_len(1, entry)
    return _enc_len(1, entries)
