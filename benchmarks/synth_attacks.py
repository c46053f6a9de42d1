"""Presentation attacks synthesised from real material, for evaluation and tests only.

Two attacks that the shared data has too few of:

- `still_photo_video`: a still photo held up to the camera by hand. The print is a plane in
  front of a pinhole camera whose pose drifts smoothly (hand sway plus a little tremor), so
  every frame is an exact homography of the photo; on top come motion blur (three renders
  across the exposure), defocus, a hand's thumb on the print, exposure drift, camera noise and
  H.264 compression. It has no recapture artefacts, which is why MiniFASNet passes such
  videos (../shared/docs/FACTS.md); the planarity cue in `preprocessing.motion` is for them.
- `screen_replay_video`: a real live video re-filmed off a screen: the frames shown on a
  tilted screen with a bezel in a room, with display gamma and colour cast, the pixel grid
  (sampled without a low-pass filter, so it aliases into moire), a lamp's glare and a faint
  reflection, refresh flicker bands, camera shake, noise and re-compression.

`recompress` re-encodes a video harder, as a messaging app would.

All return MP4/H.264 bytes (libx264, yuv420p, CRF 23 unless told otherwise) built in memory;
callers write them to a temporary or cache directory, and nothing made here is committed.
They are byte-for-byte deterministic for a seed: numpy's generator drives every random
choice, and x264 runs on one thread without macroblock-tree rate control (see `_encode`).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

CODEC = "libx264"
CRF = "23"
EXPOSURE_S = 1 / 60  # shutter time, for the motion blur of the hand-held print
SUBFRAMES = 3  # renders averaged across the exposure
GRID_ONE = 100  # the pixel-grid gain that means 1


@dataclass(frozen=True)
class _Wobble:
    """A smooth random signal in [-1, 1]: a few slow sines (sway) plus a faint fast one (tremor)."""

    freqs_hz: np.ndarray
    phases: np.ndarray
    weights: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, slow_hz=(0.15, 1.0), tremor_hz=(6.0, 10.0),
             tremor=0.08) -> _Wobble:
        freqs = np.concatenate([rng.uniform(*slow_hz, 3), rng.uniform(*tremor_hz, 1)])
        weights = np.concatenate([rng.uniform(0.5, 1.0, 3), [tremor * 3]])
        return cls(freqs, rng.uniform(0, 2 * np.pi, 4), weights / weights.sum())

    def __call__(self, t: float) -> float:
        return float(np.dot(self.weights, np.sin(2 * np.pi * self.freqs_hz * t + self.phases)))


def plane_homography(size_wh: tuple[float, float], out_wh: tuple[int, int], *, width_frac: float,
                     yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0,
                     shift_frac: tuple[float, float] = (0.0, 0.0), depth: float = 1.0
                     ) -> np.ndarray:
    """Homography from a flat picture's pixels to the image of it in a pinhole camera.

    The picture (size_wh pixels) is a plane centred on the optical axis, wide enough to cover
    width_frac of the frame when facing the camera, turned by yaw/pitch/roll, shifted by
    shift_frac of the frame and moved to depth times its resting distance.
    """
    out_w, out_h = out_wh
    focal = float(max(out_w, out_h))
    s = width_frac * out_w / size_wh[0]  # plane units per picture pixel (1 unit = 1 px at rest)
    a, b, c = np.deg2rad([pitch_deg, yaw_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    rot = rz @ ry @ rx
    t = np.array([shift_frac[0] * out_w, shift_frac[1] * out_h, focal * depth])
    k = np.array([[focal, 0, out_w / 2], [0, focal, out_h / 2], [0, 0, 1]])
    to_plane = np.array([[s, 0, -s * size_wh[0] / 2], [0, s, -s * size_wh[1] / 2], [0, 0, 1]])
    h = k @ np.column_stack([rot[:, 0], rot[:, 1], t]) @ to_plane
    return h / h[2, 2]


def _smooth_field(rng: np.random.Generator, wh: tuple[int, int], cells: int, lo: float,
                  hi: float, channels: int = 3) -> np.ndarray:
    """Low-frequency random texture (float32, values in [lo, hi]) for walls, desks, paper."""
    small = rng.uniform(lo, hi, (cells, cells, channels)).astype(np.float32)
    return cv2.resize(small, wh, interpolation=cv2.INTER_CUBIC).clip(lo, hi).reshape(
        wh[1], wh[0], channels)


def _room(rng: np.random.Generator, wh: tuple[int, int]) -> np.ndarray:
    """A plausible indoor background: a tinted, unevenly lit wall with soft blocks (furniture)."""
    base = rng.uniform(70, 190) * rng.uniform(0.85, 1.15, 3)
    room = _smooth_field(rng, wh, 6, -35, 35) + base.astype(np.float32)
    w, h = wh
    for _ in range(4):
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        x1, y1 = x0 + int(rng.uniform(0.1, 0.5) * w), y0 + int(rng.uniform(0.1, 0.5) * h)
        shade = rng.uniform(40, 210) * rng.uniform(0.85, 1.15, 3)
        cv2.rectangle(room, (x0, y0), (x1, y1), tuple(float(v) for v in shade), -1)
    room = cv2.GaussianBlur(room, (0, 0), 0.02 * w)
    room += rng.normal(0, 2.0, room.shape).astype(np.float32)
    return room.clip(0, 255)


def _encode(frames: list[np.ndarray], fps: Fraction | int, crf: str = CRF) -> bytes:
    """H.264 in MP4 (libx264, yuv420p, constant frame rate), in memory."""
    buffer = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(CODEC, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # Reproducible bytes: with x264's macroblock-tree rate control, encoding the same
        # frames again gave different bytes in some runs here, one thread or several (3 of 60
        # in one trial); without it 180 of 180 matched. One thread, because x264's output
        # depends on the thread count, hence on the machine. Phones' hardware encoders have
        # no macroblock tree either.
        stream.options = {"crf": crf, "preset": "veryfast", "threads": "1",
                          "x264-params": "mbtree=0"}
        for index, image in enumerate(frames):
            # BT.601 limited range, what decoders assume for untagged H.264 (a round trip
            # here was closer to the source than PyAV's own bgr24 conversion).
            yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = index
            frame.time_base = 1 / Fraction(fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


def _print_texture(photo_bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo as a print (uint8 BGR): a white margin, ink that never reaches black, uneven
    light and paper grain, and a thumb over the bottom margin, so it moves with the print."""
    h, w = photo_bgr.shape[:2]
    scale = float(np.clip(800 / max(h, w), 0.1, 4.0))  # the print's "resolution"
    photo = cv2.resize(photo_bgr, (round(w * scale), round(h * scale)),
                       interpolation=cv2.INTER_CUBIC).astype(np.float32)
    photo = photo * rng.uniform(0.82, 0.95) + rng.uniform(8, 20)
    margin = int(rng.uniform(0.03, 0.07) * photo.shape[1])
    paper = np.full((photo.shape[0] + 2 * margin, photo.shape[1] + 2 * margin, 3),
                    rng.uniform(225, 245), np.float32)
    paper[margin:-margin, margin:-margin] = photo
    ph, pw = paper.shape[:2]
    paper += _smooth_field(rng, (pw, ph), 8, -10, 10, 1)
    paper += rng.normal(0, 1.5, paper.shape).astype(np.float32)
    skin = (rng.uniform(100, 140), rng.uniform(135, 170), rng.uniform(185, 220))
    center = (int(pw * rng.uniform(0.3, 0.7)), ph)
    cv2.ellipse(paper, center, (int(pw * 0.06), int(ph * 0.1)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    return paper.clip(0, 255).astype(np.uint8)


def still_photo_video(photo_bgr: np.ndarray, *, seconds: float = 4.0, fps: int = 25,
                      seed: int = 0, out_size: tuple[int, int] = (720, 720)) -> bytes:
    """A still photo moved in front of a camera by hand, as MP4/H.264 bytes.

    Args:
        photo_bgr: H x W x 3 uint8, the photo that is "printed".
        seconds: length of the video.
        fps: frame rate.
        seed: every random choice (print look, background, motion, noise) follows from it.
        out_size: width, height of the video (rounded to even numbers).

    Returns:
        The MP4 file's bytes, round(seconds * fps) frames.
    """
    rng = np.random.default_rng(seed)
    out_w, out_h = _even(out_size[0]), _even(out_size[1])
    texture = _print_texture(photo_bgr, rng)
    size_wh = (texture.shape[1], texture.shape[0])
    room = _room(rng, (out_w, out_h)).astype(np.uint8)
    width_frac = rng.uniform(0.6, 0.8) * min(1.0, out_h / out_w * size_wh[0] / size_wh[1])
    base = {"yaw": rng.uniform(-8, 8), "pitch": rng.uniform(-8, 8), "roll": rng.uniform(-4, 4)}
    amp = {"yaw": rng.uniform(3, 8), "pitch": rng.uniform(3, 8), "roll": rng.uniform(1, 4),
           "x": rng.uniform(0.01, 0.04), "y": rng.uniform(0.01, 0.04), "z": rng.uniform(0.02, 0.06)}
    wobble = {name: _Wobble.draw(rng) for name in amp}
    exposure = _Wobble.draw(rng, (0.1, 0.4), tremor=0.0)
    camera = _Camera(rng, (out_w, out_h), sigma=rng.uniform(2, 5), defocus=rng.uniform(0.4, 1.0))

    def homography(t: float) -> np.ndarray:
        return plane_homography(
            size_wh, (out_w, out_h), width_frac=width_frac,
            yaw_deg=base["yaw"] + amp["yaw"] * wobble["yaw"](t),
            pitch_deg=base["pitch"] + amp["pitch"] * wobble["pitch"](t),
            roll_deg=base["roll"] + amp["roll"] * wobble["roll"](t),
            shift_frac=(amp["x"] * wobble["x"](t), amp["y"] * wobble["y"](t)),
            depth=1 + amp["z"] * wobble["z"](t))

    frames = []
    for index in range(round(seconds * fps)):
        t0 = index / fps
        acc = np.zeros((out_h, out_w, 3), np.uint16)
        for sub in range(SUBFRAMES):  # motion blur: average renders across the exposure
            layer = room.copy()
            cv2.warpPerspective(texture, homography(t0 + EXPOSURE_S * sub / (SUBFRAMES - 1)),
                                (out_w, out_h), dst=layer, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_TRANSPARENT)
            acc += layer
        gain = (1 + 0.12 * exposure(t0)) / SUBFRAMES  # auto-exposure hunting
        frames.append(camera(acc.astype(np.float32) * gain))
    return _encode(frames, fps)


class _Camera:
    """The capturing camera: a little defocus, then sensor noise, then 8 bits.

    The noise comes from a small bank of noise frames cut at random offsets: drawing fresh
    Gaussian noise for every 720x720 frame cost more than everything else together.
    """

    BANK = 3
    SLACK = 64

    def __init__(self, rng: np.random.Generator, size_wh: tuple[int, int], sigma: float,
                 defocus: float) -> None:
        w, h = size_wh
        shape = (self.BANK, h + self.SLACK, w + self.SLACK, 3)
        self._bank = rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
        self._rng, self._size, self._defocus = rng, (h, w), defocus

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = self._size
        k, dy, dx = self._rng.integers((self.BANK, self.SLACK, self.SLACK))
        image = cv2.GaussianBlur(image, (0, 0), self._defocus)
        image += self._bank[k, dy:dy + h, dx:dx + w]
        return image.clip(0, 255).astype(np.uint8)


def _decode(video_bytes: bytes, max_seconds: float) -> tuple[list[np.ndarray], Fraction]:
    """BGR frames of the first max_seconds of a video, and its frame rate (25 if unknown)."""
    frames = []
    with av.open(io.BytesIO(video_bytes)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or Fraction(25)
        rate = Fraction(round(float(rate))) if float(rate) > 0 else Fraction(25)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= max_seconds:
                break
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) >= max_seconds * float(rate):
                break
    if not frames:
        raise ValueError("the video has no decodable frames")
    return frames, rate


def _subpixel_mask(screen_wh: tuple[int, int], rng: np.random.Generator,
                   contrast: float | None = None) -> np.ndarray:
    """An LCD's pixel grid at 3 texels per screen pixel: R, G, B stripes and darker gaps
    between rows, as uint8 gains where GRID_ONE means 1 (each channel's mean is 1).

    Its contrast is a fraction of a bare grid's: defocus and the panel's diffuser soften it,
    and at full contrast the detector no longer found the faces on the screen.
    """
    w, h = screen_wh
    cell = np.full((3, 3, 3), rng.uniform(0.3, 0.5), np.float32)  # light leaking sideways
    for column, channel in enumerate((2, 1, 0)):  # R, G, B left to right, in BGR order
        cell[:, column, channel] = 1.0
    cell[2] *= rng.uniform(0.5, 0.8)  # the black matrix between rows
    drawn = rng.uniform(0.2, 0.4)
    cell = 1 + (drawn if contrast is None else contrast) * (cell / cell.mean(axis=(0, 1)) - 1)
    return np.tile(np.round(cell * GRID_ONE).astype(np.uint8), (h, w, 1))


def screen_replay_video(video_bytes: bytes, *, seed: int = 0, max_seconds: float = 6.0,
                        yaw_deg: float | None = None, pitch_deg: float | None = None,
                        cover: float | None = None, pixel_pitch: float | None = None,
                        grid_contrast: float | None = None) -> bytes:
    """A real video re-rendered as if filmed off a screen, as MP4/H.264 bytes.

    Args:
        video_bytes: the source video (any container PyAV reads).
        seed: every random choice (room, screen pose, display look, shake, noise) follows from it.
        max_seconds: at most this much of the source is used.
        yaw_deg, pitch_deg: the screen's resting turn and tilt instead of the drawn ones
            (+-15, +-12 degrees), for replays at steep angles.
        cover: the share of the frame width the screen covers at rest instead of 0.6-0.8
            (distance: 0.35 is a screen held far off, above 1 one filling the frame, its
            bezel outside it).
        pixel_pitch: camera pixels per screen pixel instead of 0.8-1.3 (about 1 aliases most:
            the strongest moire).
        grid_contrast: the pixel grid's contrast instead of 0.2-0.4.
        Every override leaves the random draws as they were, so the other choices of a seed
        stay the same, and without overrides the bytes are those of earlier versions.

    Returns:
        The MP4 file's bytes, at the source's frame rate rounded to an integer, with as many
        frames as were decoded from the first max_seconds. The frame has the source's aspect
        ratio, 720 px on the long side.
    """
    rng = np.random.default_rng(seed)
    source, fps = _decode(video_bytes, max_seconds)
    src_h, src_w = source[0].shape[:2]
    scale = 720 / max(src_w, src_h)
    out_w, out_h = _even(src_w * scale), _even(src_h * scale)
    room = _room(rng, (out_w, out_h)).astype(np.uint8)
    # Each screen pixel covers 0.8-1.3 camera pixels: the range where the grid aliases.
    cover_drawn, pitch_drawn = rng.uniform(0.6, 0.8), rng.uniform(0.8, 1.3)
    cover = cover_drawn if cover is None else cover
    pitch = pitch_drawn if pixel_pitch is None else pixel_pitch
    screen_w = _even(cover * min(out_w, out_h * src_w / src_h) / pitch)
    screen_h = _even(screen_w * src_h / src_w)
    bezel = rng.uniform(0.03, 0.07) * screen_w
    case = np.array([[-bezel, -bezel], [screen_w + bezel, -bezel],
                     [screen_w + bezel, screen_h + bezel], [-bezel, screen_h + bezel]], np.float32)
    pose = {"yaw": rng.uniform(-15, 15), "pitch": rng.uniform(-12, 12), "roll": rng.uniform(-5, 5)}
    if yaw_deg is not None:
        pose["yaw"] = yaw_deg
    if pitch_deg is not None:
        pose["pitch"] = pitch_deg
    shake = {name: _Wobble.draw(rng, (0.3, 2.0), tremor=0.15)
             for name in ("yaw", "pitch", "roll", "x", "y")}
    grid = _subpixel_mask((screen_w, screen_h), rng, grid_contrast)
    fine = np.array([[1 / 3, 0, -1 / 3], [0, 1 / 3, -1 / 3], [0, 0, 1]])  # texel -> screen pixel
    # Display response: gamma, a bluish cast (BGR gains) and backlight leak (no true black).
    gamma, black = rng.uniform(1.0, 1.3), rng.uniform(15, 35)
    cast = (rng.uniform(1.0, 1.15), rng.uniform(0.95, 1.05), rng.uniform(0.85, 1.0))
    levels = np.arange(256, dtype=np.float32) / 255
    lut = np.stack([black + (255 - black) * levels ** gamma * g for g in cast], axis=-1)
    lut = lut.clip(0, 255).astype(np.uint8).reshape(256, 1, 3)
    # A lamp's glare and a faint mirror image of the room, fixed on the glass.
    glare_x, glare_y = rng.uniform(0.15, 0.85, 2) * (screen_w, screen_h)
    yy, xx = np.mgrid[0:screen_h, 0:screen_w].astype(np.float32)
    glare = rng.uniform(40, 90) * np.exp(-((xx - glare_x) / (0.25 * screen_w)) ** 2
                                          - ((yy - glare_y) / (0.15 * screen_h)) ** 2)
    mirrored = cv2.resize(room, (screen_w, screen_h))[::-1].astype(np.float32)
    on_glass = (glare[..., None] + mirrored * rng.uniform(0.05, 0.12)).clip(0, 255).astype(np.uint8)
    # Refresh flicker: faint bands rolling down the frame.
    period, speed = rng.uniform(0.1, 0.3) * out_h, rng.uniform(20, 80)
    rows = np.arange(out_h, dtype=np.float32)[:, None, None]
    camera = _Camera(rng, (out_w, out_h), sigma=rng.uniform(2, 5), defocus=rng.uniform(0.5, 1.0))

    frames = []
    for index, frame in enumerate(source):
        t = index / float(fps)
        active = plane_homography(
            (screen_w, screen_h), (out_w, out_h), width_frac=cover,
            yaw_deg=pose["yaw"] + 0.6 * shake["yaw"](t),
            pitch_deg=pose["pitch"] + 0.6 * shake["pitch"](t),
            roll_deg=pose["roll"] + 0.4 * shake["roll"](t),
            shift_frac=(0.006 * shake["x"](t), 0.006 * shake["y"](t)))
        shown = cv2.resize(frame, (screen_w, screen_h), interpolation=cv2.INTER_AREA)
        emitted = cv2.add(cv2.LUT(shown, lut), on_glass)
        image = room.copy()
        corners = cv2.perspectiveTransform(case[None], active)[0]
        cv2.fillConvexPoly(image, np.round(corners * 16).astype(np.int32), (28, 28, 30),
                           cv2.LINE_AA, 4)
        cv2.warpPerspective(emitted, active, (out_w, out_h), dst=image, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_TRANSPARENT)
        # The grid is sampled at camera pixels without a low-pass filter: that is the moire.
        gains = cv2.warpPerspective(grid, active @ fine, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                    borderValue=(GRID_ONE, GRID_ONE, GRID_ONE))
        image = cv2.multiply(image, gains, scale=1 / GRID_ONE)
        flicker = 1 + 0.04 * np.sin(2 * np.pi * (rows + speed * t) / period)
        frames.append(camera(image.astype(np.float32) * flicker))
    return _encode(frames, fps)


def recompress(video_bytes: bytes, *, crf: int = 35) -> bytes:
    """The same video re-encoded harder (as a messaging app would), as MP4/H.264 bytes."""
    frames, fps = _decode(video_bytes, math.inf)
    return _encode(frames, fps, str(crf))
