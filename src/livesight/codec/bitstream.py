"""Facts read from one depayloaded video frame without decoding it: is it a keyframe, what size is it.

VP8 (RFC 6386 §9.1): bit 0 of the frame tag is 0 on a keyframe, whose header then carries the start
code 9d 01 2a and the 14-bit width and height. H264 (Annex-B, start codes): an access unit is a keyframe
when it holds an IDR slice (NAL type 5); the size comes from its sequence parameter set (type 7, ITU-T
H.264 §7.3.2.1.1), cropping included. Only keyframes carry a size; other frames inherit their GOP's.
A frame these parsers cannot read is simply not a keyframe: it then waits for (or belongs to) a real one.
"""

from __future__ import annotations

from dataclasses import dataclass

VP8 = "vp8"
H264 = "h264"
CODECS = (VP8, H264)


@dataclass(frozen=True, slots=True)
class Keyframe:
    width: int
    height: int


def keyframe(codec: str, data: bytes) -> Keyframe | None:
    """The keyframe's size, or None when `data` is not a (readable) keyframe of `codec`."""
    if codec == VP8:
        return _vp8_keyframe(data)
    if codec == H264:
        return _h264_keyframe(data)
    raise ValueError(f"unknown codec {codec!r}")


def _vp8_keyframe(data: bytes) -> Keyframe | None:
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return Keyframe(width, height) if width and height else None


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B access unit (start codes 00 00 01 or 00 00 00 01), without start codes."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        start += 3
        end = data.find(b"\x00\x00\x01", start)
        unit = data[start:] if end < 0 else data[start:end].rstrip(b"\x00")
        if unit:
            units.append(unit)
        start = end
    return units


def _h264_keyframe(data: bytes) -> Keyframe | None:
    units = nal_units(data)
    if not any(u[0] & 0x1F == 5 for u in units):
        return None
    for unit in units:
        if unit[0] & 0x1F == 7:
            try:
                return _sps_size(unit)
            except (IndexError, ValueError):
                return None
    return None  # an IDR without its SPS: not decodable from here


class _Bits:
    """An RBSP bit reader (emulation-prevention bytes removed), with Exp-Golomb codes."""

    def __init__(self, nal: bytes) -> None:
        self._data = nal.replace(b"\x00\x00\x03", b"\x00\x00")
        self._pos = 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3]  # IndexError past the end: the caller treats it as unreadable
        value = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = value << 1 | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _sps_size(nal: bytes) -> Keyframe:
    r = _Bits(nal[1:])
    profile_idc = r.bits(8)
    r.bits(16)  # constraint flags, level_idc
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            r.bit()  # separate_colour_plane_flag
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.bit():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = height_map_units * 16 * (2 - frame_mbs_only)
    if r.bit():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        crop_x = {0: 1, 1: 2, 2: 2, 3: 1}[chroma_format_idc]
        crop_y = {0: 1, 1: 2, 2: 1, 3: 1}[chroma_format_idc] * (2 - frame_mbs_only)
        width -= (left + right) * crop_x
        height -= (top + bottom) * crop_y
    if width <= 0 or height <= 0:
        raise ValueError("bad SPS size")
    return Keyframe(width, height)


def _skip_scaling_list(r: _Bits, size: int) -> None:
    last, next_ = 8, 8
    for _ in range(size):
        if next_:
            next_ = (last + r.se() + 256) % 256
        last = next_ or last
