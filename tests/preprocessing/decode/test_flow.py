"""Flow ground-truth readers and the crop/resize policy (``preprocessing.decode.flow``)."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from preprocessing.decode.flow import (
    FlowDecodeError,
    decode_flow_sample,
    decode_frame,
    encode_kitti_flow,
    fit_sample,
    read_flo,
    read_kitti_flow,
    resized_size,
    write_flo,
)
from preprocessing.decode.png16 import write_png


def _img(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array, mode="RGB")


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_real_flyingchairs_flo_header_values_and_ranges(shared_samples):
    data = (shared_samples / "flow" / "00001_flow.flo").read_bytes()
    assert data[:4] == b"PIEH" and struct.unpack("<f", data[:4])[0] == 202021.25
    assert len(data) == 12 + 8 * 50 * 50 == 20012
    flow, valid = read_flo(data)
    assert flow.shape == (50, 50, 2) and flow.dtype == np.float32 and valid.all()
    u, v = flow[:, :, 0], flow[:, :, 1]
    assert (round(float(u.min()), 2), round(float(u.max()), 2)) == (-10.27, 0.68)
    assert (round(float(v.min()), 2), round(float(v.max()), 2)) == (-7.75, -1.22)
    # row-major, u then v: pixel (x=0, y=0) is the first pair after the header
    assert tuple(flow[0, 0]) == struct.unpack("<ff", data[12:20])
    assert tuple(flow[0, 1]) == struct.unpack("<ff", data[20:28])


def test_real_flyingchairs_frames_decode_and_follow_the_convention(shared_samples):
    d = shared_samples / "flow"
    f1 = np.asarray(decode_frame((d / "00001_img1.ppm").read_bytes(), "img1"), float)
    f2 = np.asarray(decode_frame((d / "00001_img2.ppm").read_bytes(), "img2"), float)
    assert f1.shape == f2.shape == (50, 50, 3)
    flow, _ = read_flo((d / "00001_flow.flo").read_bytes())
    ys, xs = np.mgrid[0:50, 0:50]

    def error(sign: float) -> float:
        x2 = np.rint(xs + sign * flow[:, :, 0]).astype(int)
        y2 = np.rint(ys + sign * flow[:, :, 1]).astype(int)
        inside = (x2 >= 0) & (x2 < 50) & (y2 >= 0) & (y2 < 50)
        return float(np.abs(f1[inside] - f2[y2[inside], x2[inside]]).mean())

    # frame1(x, y) matches frame2(x + u, y + v): measured 3.03 vs 4.88 (no motion), 8.97 (-flow)
    assert error(1.0) < 0.7 * error(0.0) < error(-1.0)


def test_flo_round_trip_and_unknown_values_are_invalid():
    flow = np.random.default_rng(0).normal(0, 5, (7, 9, 2)).astype(np.float32)
    back, valid = read_flo(write_flo(flow))
    np.testing.assert_array_equal(back, flow)
    assert valid.all()
    flow[1, 2, 0] = 1e10
    flow[3, 4, 1] = -2e9
    flow[5, 6, 0] = np.nan
    flow[6, 8] = (1e9, -1e9)  # exactly 1e9 is still a value
    _, valid = read_flo(write_flo(flow))
    assert sorted(zip(*np.nonzero(~valid), strict=True)) == [(1, 2), (3, 4), (5, 6)]


def test_bad_flo_files_are_rejected_with_reasons():
    good = write_flo(np.zeros((4, 5, 2), np.float32))
    cases = {
        b"": "truncated .flo: 0 bytes, the header needs 12",
        b"PIEX" + good[4:]: "bad .flo magic b'PIEX'",
        good[:-4]: "truncated .flo: 168 bytes, a 5x4 field needs 172",
        good + b"\0" * 8: "trailing data after the .flo field: 180 bytes",
        good[:4] + struct.pack("<ii", -5, 4) + good[12:]: "bad .flo size: width=-5, height=4",
    }
    for data, reason in cases.items():
        with pytest.raises(FlowDecodeError) as exc:
            read_flo(data, "x.flo")
        assert exc.value.stage == "decode"
        assert exc.value.reason.startswith("x.flo: ") and reason in exc.value.reason


def test_kitti_16bit_png_decodes_to_known_values():
    samples = np.zeros((2, 3, 3), np.uint16)
    samples[0, 0] = (32768 + 128, 32768 - 64, 1)  # u = 2, v = -1
    samples[0, 1] = (32768 + 1, 32768, 1)  # u = 1/64, v = 0
    samples[0, 2] = (65535, 0, 1)  # u = 32767/64, v = -512
    samples[1, 0] = (32768 + 640, 32768, 0)  # B = 0: invalid whatever R, G say
    samples[1, 1] = (0, 0, 0)
    samples[1, 2] = (32768, 32768 + 6400, 7)  # any B > 0 is valid; v = 100
    flow, valid = read_kitti_flow(write_png(samples))
    assert flow.dtype == np.float32
    assert tuple(flow[0, 0]) == (2.0, -1.0)
    assert tuple(flow[0, 1]) == (1 / 64, 0.0)
    assert tuple(flow[0, 2]) == (32767 / 64, -512.0)
    assert tuple(flow[1, 2]) == (0.0, 100.0)
    assert valid.tolist() == [[True, True, True], [False, False, True]]
    # and the encoder used by the sample data inverts it
    encoded = encode_kitti_flow(flow, valid)
    np.testing.assert_array_equal(encoded[valid][:, :2], samples[valid][:, :2])
    assert encoded[:, :, 2].tolist() == valid.astype(int).tolist()


def test_kitti_rejects_8bit_and_interlaced_pngs():
    samples = np.full((4, 4, 3), 32768, np.uint16)
    buf = io.BytesIO()
    Image.fromarray((samples >> 8).astype(np.uint8)).save(buf, format="PNG")
    with pytest.raises(FlowDecodeError, match="8-bit with 3 channel"):
        read_kitti_flow(buf.getvalue())
    with pytest.raises(FlowDecodeError, match="interlaced"):
        read_kitti_flow(write_png(samples, interlace=True))


def test_upscale_2x_scales_a_constant_flow():
    h, w = 184, 248
    flow = np.zeros((h, w, 2), np.float32)
    flow[:, :, 0], flow[:, :, 1] = 2.0, 1.0
    valid = np.ones((h, w), bool)
    out = fit_sample(_img(_rgb(h, w)), _img(_rgb(h, w, 1)), flow, valid, 368, 496)
    assert out.resized and out.flags == ["resized"]
    assert out.frames.shape == (2, 368, 496, 3) and out.frames.dtype == np.uint8
    assert out.flow.shape == (368, 496, 2) and out.flow.dtype == np.float32
    np.testing.assert_allclose(out.flow[:, :, 0], 4.0, atol=1e-5)
    np.testing.assert_allclose(out.flow[:, :, 1], 2.0, atol=1e-5)
    assert out.valid.dtype == np.uint8 and out.valid.all()


def test_other_aspect_keeps_the_ratio_and_scales_u_and_v_by_their_own_factors():
    assert resized_size(24, 30, 32, 48) == (38, 48)  # s = max(32/24, 48/30) = 1.6
    flow = np.zeros((24, 30, 2), np.float32)
    flow[:, :, 0], flow[:, :, 1] = 3.0, -2.0
    out = fit_sample(_img(_rgb(24, 30)), _img(_rgb(24, 30)), flow, np.ones((24, 30), bool), 32, 48)
    np.testing.assert_allclose(out.flow[:, :, 0], 3.0 * 48 / 30, rtol=1e-6)
    np.testing.assert_allclose(out.flow[:, :, 1], -2.0 * 38 / 24, rtol=1e-6)
    # the frames went through the same geometry: Pillow bilinear to 48x38, rows 3..35
    want = np.asarray(_img(_rgb(24, 30)).resize((48, 38), Image.Resampling.BILINEAR))[3:35]
    np.testing.assert_array_equal(out.frames[0], want)


def test_crop_keeps_values_and_takes_the_center():
    rng = np.random.default_rng(3)
    flow = rng.normal(0, 3, (40, 56, 2)).astype(np.float32)
    valid = rng.random((40, 56)) < 0.8
    f1 = _rgb(40, 56)
    out = fit_sample(_img(f1), _img(_rgb(40, 56, 1)), flow, valid, 32, 48)
    assert not out.resized and "resized" not in out.flags
    np.testing.assert_array_equal(out.frames[0], f1[4:36, 4:52])
    np.testing.assert_array_equal(out.valid, valid[4:36, 4:52])
    want = np.where(valid[4:36, 4:52, None], flow[4:36, 4:52], 0.0)
    np.testing.assert_array_equal(out.flow, want)  # unchanged, 0 where invalid
    assert "invalid_pixels" in out.flags


def test_invalid_pixels_never_blend_into_valid_ones():
    flow = np.full((8, 10, 2), 1.0, np.float32)
    valid = np.ones((8, 10), bool)
    flow[:, :5] = 1e10  # the unknown half, as a .flo stores it
    valid[:, :5] = False
    out = fit_sample(_img(_rgb(8, 10)), _img(_rgb(8, 10)), flow, valid, 16, 20)
    ok = out.valid.astype(bool)
    # nearest for the mask: the left half of the output is invalid, the right half valid
    assert not ok[:, :10].any() and ok[:, 10:].all()
    np.testing.assert_allclose(out.flow[ok], 2.0, rtol=1e-6)  # u and v scaled by 2, unblended
    assert (out.flow[~ok] == 0).all()


def test_sample_size_mismatch_and_bad_frames_are_decode_errors():
    png = io.BytesIO()
    _img(_rgb(6, 8)).save(png, format="PNG")
    frame = png.getvalue()
    flo = write_flo(np.zeros((6, 7, 2), np.float32))
    with pytest.raises(FlowDecodeError, match=r"size mismatch: frame 1 8x6, frame 2 8x6, flow 7x6"):
        decode_flow_sample(frame, frame, flo, "flo", 4, 4)
    jpeg = io.BytesIO()
    _img(_rgb(6, 8)).save(jpeg, format="JPEG")
    with pytest.raises(FlowDecodeError, match="unsupported image format JPEG"):
        decode_flow_sample(frame, jpeg.getvalue(), flo, "flo", 4, 4)
    with pytest.raises(FlowDecodeError, match="truncated file"):
        decode_flow_sample(frame[:-30], frame, flo, "flo", 4, 4)
    ok = decode_flow_sample(frame, frame, write_flo(np.zeros((6, 8, 2), np.float32)), "flo", 4, 4)
    assert (ok.orig_height, ok.orig_width) == (6, 8) and len(ok.key) == 64
