"""Procedural images: the laptop study's stand-in for ImageNet.

Why procedural: nothing can be downloaded on the study's machines, yet pruning methods only
differ in transfer when the upstream task is rich enough to learn reusable features. Each class
is a (shape, texture) pair -- 8 shapes x 8 textures = 64 classes by default -- and every image
draws its own colours, position, scale, rotation, stripe period/phase and pixel noise, so the
task needs both shape and texture features, like a very small ImageNet.

Every image is a pure function of ``(spec, seed, split, label, k)`` (``k`` = its index within
its class): the random generator is seeded from exactly those numbers, so any image can be
regenerated on any machine and a dataset never needs to be stored or shipped.

Fine-grained specs (``fine_grained_spec``) stand in for the paper's "specialized" downstream
tasks: classes that differ only in a small detail (stripe angle, star shape, hue, stripe period).

Public API:
    ``ProceduralSpec``            frozen config of a family of images.
    ``generate(spec, n_per_class, seed, split="train")`` -> (uint8 N x H x W x 3, int64 labels).
    ``render_image(spec, label, k, seed, split="train")`` -> one uint8 H x W x 3 image.
    ``ProceduralImages(spec, split, n_per_class, seed, transform)`` torch Dataset of
        ``(transform(PIL RGB image), label)``.
    ``fine_grained_spec(variant, num_classes=None, image_size=32)`` and ``FINE_GRAINED``.
"""

from __future__ import annotations

import hashlib
import io
import math
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from common import storage
from common.errors import BadInput

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "cross",
    "star",
    "ring",
    "diamond",
    "hexagon",
)
TEXTURES: tuple[str, ...] = (
    "solid",
    "hstripes",
    "vstripes",
    "diagonal",
    "checker",
    "dots",
    "grid",
    "waves",
)
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

# fine-grained variant -> (default class count, one-line description); see fine_grained_spec.
FINE_GRAINED: dict[str, tuple[int, str]] = {
    "stripe_angle": (12, "striped discs; classes differ only in stripe angle (15 deg apart)"),
    "shape_detail": (12, "solid stars; classes differ in point count (4-9) and point depth"),
    "stripe_period": (10, "striped squares; classes differ only slightly in stripe period"),
    "hue": (12, "solid hexagons; classes differ only in hue, 0.04 of the hue circle apart"),
}


@dataclass(frozen=True)
class ProceduralSpec:
    """What a family of procedural images looks like.

    Args:
        num_classes: number of classes; at most ``len(shapes) * len(textures)`` in the
            default (coarse) mode, any count >= 2 in a fine-grained mode.
        image_size: side in pixels (square RGB images).
        shapes: shape names, a subset of ``SHAPES``.
        textures: texture names, a subset of ``TEXTURES``.
        noise: standard deviation of the Gaussian pixel noise, in [0, 1] intensity units.
        scale: (min, max) shape radius as a fraction of ``image_size``.
        rotation: maximum shape rotation in degrees (uniform in +-rotation). Kept below 45 so a
            square never turns into the diamond class.
        texture_rotation: maximum texture-angle jitter in degrees; small so horizontal,
            vertical and diagonal stripes stay distinct classes.
        period: (min, max) texture period as a fraction of ``image_size``.
        fine_grained: None (coarse shape x texture classes) or a key of ``FINE_GRAINED``.
        fine_step: class spacing of the fine-grained variant, in its own unit (degrees for
            ``stripe_angle``, period fraction for ``stripe_period``, hue fraction for ``hue``;
            ignored by ``shape_detail``). 0 picks the variant's default.
    """

    num_classes: int = 64
    image_size: int = 32
    shapes: tuple[str, ...] = SHAPES
    textures: tuple[str, ...] = TEXTURES
    noise: float = 0.05
    scale: tuple[float, float] = (0.28, 0.45)
    rotation: float = 25.0
    texture_rotation: float = 8.0
    period: tuple[float, float] = (0.16, 0.25)
    fine_grained: str | None = None
    fine_step: float = 0.0

    def __post_init__(self) -> None:
        if self.image_size < 8:
            raise BadInput(f"ProceduralSpec.image_size must be >= 8, got {self.image_size}")
        unknown = [s for s in self.shapes if s not in SHAPES]
        if unknown or not self.shapes:
            raise BadInput(
                f"ProceduralSpec.shapes must be non-empty names from {SHAPES}, "
                f"got {unknown or self.shapes}"
            )
        unknown = [t for t in self.textures if t not in TEXTURES]
        if unknown or not self.textures:
            raise BadInput(
                f"ProceduralSpec.textures must be non-empty names from {TEXTURES}, "
                f"got {unknown or self.textures}"
            )
        if self.fine_grained is not None and self.fine_grained not in FINE_GRAINED:
            raise BadInput(
                f"ProceduralSpec.fine_grained must be None or one of {sorted(FINE_GRAINED)}, "
                f"got {self.fine_grained!r}"
            )
        limit = {None: len(self.shapes) * len(self.textures), "shape_detail": 12}.get(
            self.fine_grained, 1000
        )
        if not 2 <= self.num_classes <= limit:
            raise BadInput(
                f"ProceduralSpec.num_classes must be in [2, {limit}] for "
                f"{len(self.shapes)} shapes x {len(self.textures)} textures, got {self.num_classes}"
            )
        if not 0.0 <= self.noise <= 1.0:
            raise BadInput(f"ProceduralSpec.noise must be in [0, 1], got {self.noise}")
        lo, hi = self.scale
        if not 0.05 <= lo <= hi <= 0.5:
            raise BadInput(
                f"ProceduralSpec.scale must satisfy 0.05 <= min <= max <= 0.5, got {self.scale}"
            )
        lo, hi = self.period
        if not 0.05 <= lo <= hi <= 1.0:
            raise BadInput(
                f"ProceduralSpec.period must satisfy 0.05 <= min <= max <= 1, got {self.period}"
            )
        if not 0 <= self.rotation < 45:
            raise BadInput(
                f"ProceduralSpec.rotation must be in [0, 45) degrees, got {self.rotation}"
            )

    def class_name(self, label: int) -> str:
        """A readable name of class ``label``: ``"star/checker"``, ``"stripe_angle/30.0deg"``."""
        p = _class_params(self, label)
        if self.fine_grained is None:
            return f"{p['shape']}/{p['texture']}"
        detail = {
            "stripe_angle": lambda: f"{p.get('angle', 0):.1f}deg",
            "shape_detail": lambda: f"{p.get('points')}pt-"
            + ("deep" if p.get("inner") == 0.45 else "shallow"),
            "stripe_period": lambda: f"period{p.get('period', 0):.3f}",
            "hue": lambda: f"hue{p.get('hue', 0):.3f}",
        }[self.fine_grained]()
        return f"{self.fine_grained}/{detail}"


def fine_grained_spec(
    variant: str, num_classes: int | None = None, image_size: int = 32, **overrides
) -> ProceduralSpec:
    """A spec whose classes are near-identical, standing in for a "specialized" task.

    Variants (see ``FINE_GRAINED``):
        ``"stripe_angle"``: striped discs, class c has stripes at ``c * 15`` degrees (+-2).
        ``"shape_detail"``: solid stars; class = point count 4..9 x shallow/deep points.
        ``"stripe_period"``: striped squares; periods 0.12, 0.135, ... of the image size.
        ``"hue"``: solid hexagons of hue ``c * 0.04`` (+-0.006) on a dull background.

    Args:
        variant: a key of ``FINE_GRAINED``.
        num_classes: class count; None takes the variant's default.
        image_size: image side in pixels.
        **overrides: any other ``ProceduralSpec`` field (noise, scale, fine_step, ...).
    """
    if variant not in FINE_GRAINED:
        raise BadInput(
            f"unknown fine-grained variant {variant!r}; valid: {', '.join(FINE_GRAINED)}"
        )
    n = FINE_GRAINED[variant][0] if num_classes is None else num_classes
    return ProceduralSpec(num_classes=n, image_size=image_size, fine_grained=variant, **overrides)


# --------------------------------------------------------------------------------------------
# class -> parameters


def _class_params(spec: ProceduralSpec, label: int) -> dict:
    """The fixed (per-class) parameters of class ``label``."""
    if not 0 <= label < spec.num_classes:
        raise ValueError(f"label must be in [0, {spec.num_classes}), got {label}")
    v = spec.fine_grained
    if v is None:
        ns, nt = len(spec.shapes), len(spec.textures)
        # Spread the first classes over both shapes and textures: c -> (c % ns, (c // ns + c) % nt)
        # is a bijection on ns*nt classes when ns == nt; otherwise pairs are enumerated plainly.
        if ns == nt:
            s, t = label % ns, (label // ns + label) % nt
        else:
            s, t = label % ns, (label // ns) % nt
        return {"shape": spec.shapes[s], "texture": spec.textures[t]}
    if v == "stripe_angle":
        step = spec.fine_step or 180.0 / spec.num_classes
        return {
            "shape": "circle", "texture": "hstripes", "angle": label * step,
            "angle_jitter": 0.15 * step,
        }
    if v == "shape_detail":
        points = 4 + label % 6
        depth = (0.45, 0.7)[(label // 6) % 2]
        return {"shape": "star", "texture": "solid", "points": points, "inner": depth}
    if v == "stripe_period":
        step = spec.fine_step or 0.015
        return {
            "shape": "square", "texture": "vstripes", "period": 0.12 + label * step,
            "period_jitter": 0.2 * step,
        }
    if v == "hue":
        step = spec.fine_step or 0.04
        return {
            "shape": "hexagon", "texture": "solid", "hue": label * step,
            "hue_jitter": 0.15 * step,
        }
    raise ValueError(f"unknown fine-grained variant {v!r}")  # unreachable: checked in the spec


# --------------------------------------------------------------------------------------------
# drawing


def _polygon(
    shape: str, cx: float, cy: float, r: float, theta: float, p: dict
) -> list[tuple[float, float]]:
    """Vertices of a polygonal shape centred at (cx, cy) with radius r, rotated by theta."""
    if shape == "square":
        ang = np.pi / 4 + np.arange(4) * np.pi / 2
        rad = np.full(4, r * 1.05)
    elif shape == "diamond":
        ang = np.arange(4) * np.pi / 2
        rad = np.array([r * 1.15, r * 0.7, r * 1.15, r * 0.7])
    elif shape == "triangle":
        ang = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        rad = np.full(3, r * 1.15)
    elif shape == "hexagon":
        ang = np.arange(6) * np.pi / 3
        rad = np.full(6, r)
    elif shape == "star":
        k = p.get("points", 5)
        ang = -np.pi / 2 + np.arange(2 * k) * np.pi / k
        rad = np.where(np.arange(2 * k) % 2 == 0, r * 1.1, r * 1.1 * p.get("inner", 0.45))
    elif shape == "cross":
        a, b = r * 1.05, r * 0.38
        xs = np.array([-b, b, b, a, a, b, b, -b, -b, -a, -a, -b])
        ys = np.array([-a, -a, -b, -b, b, b, a, a, b, b, -b, -b])
        ang = np.arctan2(ys, xs)
        rad = np.hypot(xs, ys)
    else:
        raise ValueError(f"not a polygonal shape: {shape!r}")
    ang = ang + theta
    return list(zip((cx + rad * np.cos(ang)).tolist(), (cy + rad * np.sin(ang)).tolist()))


def _shape_alpha(
    shape: str, size: int, cx: float, cy: float, r: float, theta: float, p: dict
) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] (H x W float32): drawn at 2x, then 2x2-averaged."""
    ss = 2
    canvas = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = cx * ss, cy * ss, r * ss
    if shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        if shape == "ring":
            ri = r * 0.55
            draw.ellipse((cx - ri, cy - ri, cx + ri, cy + ri), fill=0)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, theta, p), fill=255)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) * (1.0 / 255.0)


def _texture(texture: str, xr: np.ndarray, yr: np.ndarray, freq: float, phase: float) -> np.ndarray:
    """Binary pattern (float32 0/1) on rotated pixel coordinates; ``freq`` in cycles per pixel."""
    two_pi = 2 * np.pi
    if texture == "solid":
        return np.ones_like(xr)
    if texture == "hstripes":
        return (np.sin(two_pi * freq * yr + phase) > 0).astype(np.float32)
    if texture == "vstripes":
        return (np.sin(two_pi * freq * xr + phase) > 0).astype(np.float32)
    if texture == "diagonal":
        return (np.sin(two_pi * freq * (xr + yr) / math.sqrt(2) + phase) > 0).astype(np.float32)
    if texture == "checker":
        u = np.floor(freq * xr * 2 + phase / np.pi) + np.floor(freq * yr * 2 + phase / np.pi)
        return (u % 2).astype(np.float32)
    if texture == "dots":
        u = freq * xr + phase / two_pi
        v = freq * yr + phase / two_pi
        d2 = (u - np.round(u)) ** 2 + (v - np.round(v)) ** 2
        return (d2 < 0.09).astype(np.float32)
    if texture == "grid":
        u = freq * xr + phase / two_pi
        v = freq * yr + phase / two_pi
        line = np.minimum(np.abs(u - np.round(u)), np.abs(v - np.round(v)))
        return (line < 0.17).astype(np.float32)
    if texture == "waves":
        wobble = 1.8 * np.sin(two_pi * freq * 0.6 * xr)
        return (np.sin(two_pi * freq * yr + wobble + phase) > 0).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}")


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32)


def _distinct_colour(
    rng: np.random.Generator, avoid: list[np.ndarray], min_dist: float
) -> np.ndarray:
    """A random RGB colour at least ``min_dist`` (L2, [0,1] units) from each colour in ``avoid``."""
    c = rng.random(3, dtype=np.float32)
    for _ in range(20):
        if all(float(((c - a) ** 2).sum()) >= min_dist**2 for a in avoid):
            break
        c = rng.random(3, dtype=np.float32)
    return c


_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size not in _GRIDS:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        _GRIDS[size] = (xx, yy)
    return _GRIDS[size]


def _split_code(split: str) -> int:
    try:
        return SPLITS[split]
    except KeyError:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}") from None


def _pattern(spec: ProceduralSpec, p: dict, rng: np.random.Generator, dx: np.ndarray,
             dy: np.ndarray) -> np.ndarray:
    """The texture in rotated, shifted coordinates (``dx``, ``dy`` from the shape's centre);
    draws its angle, period and phase from ``rng`` in that order."""
    size = spec.image_size
    if "angle" in p:
        t_ang = math.radians(p["angle"] + rng.uniform(-1, 1) * p["angle_jitter"])
    else:
        t_ang = math.radians(rng.uniform(-spec.texture_rotation, spec.texture_rotation))
    if "period" in p:
        period = (p["period"] + rng.uniform(-1, 1) * p["period_jitter"]) * size
    else:
        period = rng.uniform(*spec.period) * size
    phase = rng.uniform(0, 2 * np.pi)
    c, s = math.cos(t_ang), math.sin(t_ang)
    xr, yr = c * dx + s * dy, -s * dx + c * dy
    return _texture(p["texture"], xr, yr, 1.0 / period, phase)


def render_image(
    spec: ProceduralSpec, label: int, k: int, seed: int, split: str = "train"
) -> np.ndarray:
    """Image ``k`` of class ``label``: uint8 H x W x 3, a pure function of its arguments.

    Args:
        spec: the image family.
        label: class index in ``[0, spec.num_classes)``.
        k: index of the image within its class (>= 0).
        seed: dataset seed (>= 0); different seeds give unrelated images.
        split: ``"train"``, ``"val"`` or ``"test"``; each split draws from its own stream.
    """
    if seed < 0 or k < 0:
        raise BadInput(f"seed and k must be >= 0, got seed={seed}, k={k}")
    salt = zlib.crc32((spec.fine_grained or "coarse").encode())  # unrelated streams per variant
    rng = np.random.default_rng([seed, _split_code(split), salt, label, k])
    p = _class_params(spec, label)
    size = spec.image_size
    xx, yy = _grid(size)

    # Background: a colour with a gentle linear gradient.
    bg = rng.random(3, dtype=np.float32)
    g_ang = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(g_ang) * xx + np.sin(g_ang) * yy) / size - 0.5
    background = bg[None, None, :] + 0.25 * rng.uniform(-1, 1) * ramp[..., None]

    # Foreground colours: two well-separated colours for the pattern, both far from bg.
    if "hue" in p:
        h = (p["hue"] + rng.uniform(-1, 1) * p["hue_jitter"]) % 1.0
        col_a = col_b = _hsv_to_rgb(h, 0.85, 0.95)
        background = background * 0.35  # dull background so the hue carries the class
    else:
        col_a = _distinct_colour(rng, [bg], 0.45)
        col_b = _distinct_colour(rng, [bg, col_a], 0.45)

    # Geometry.
    r = rng.uniform(*spec.scale) * size
    margin = r * 0.9
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    theta = math.radians(rng.uniform(-spec.rotation, spec.rotation))
    alpha = _shape_alpha(p["shape"], size, cx, cy, r, theta, p)

    pattern = _pattern(spec, p, rng, xx - cx, yy - cy)
    foreground = pattern[..., None] * col_a + (1.0 - pattern[..., None]) * col_b

    img = alpha[..., None] * foreground + (1.0 - alpha[..., None]) * background
    if spec.noise > 0:
        img = img + spec.noise * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def generate(
    spec: ProceduralSpec, n_per_class: int, seed: int, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """All images of a split: ``(uint8 N x H x W x 3, int64 labels of length N)``.

    Images are ordered class-interleaved (index ``i`` has label ``i % num_classes`` and is
    image ``k = i // num_classes`` of its class), so any prefix is class-balanced. Row ``i``
    equals ``render_image(spec, i % C, i // C, seed, split)``.
    """
    if n_per_class < 1:
        raise BadInput(f"n_per_class must be >= 1, got {n_per_class}")
    _split_code(split)
    n_cls, size = spec.num_classes, spec.image_size
    images = np.empty((n_per_class * n_cls, size, size, 3), dtype=np.uint8)
    labels = np.tile(np.arange(n_cls, dtype=np.int64), n_per_class)
    for i in range(images.shape[0]):
        images[i] = render_image(spec, i % n_cls, i // n_cls, seed, split)
    return images, labels


def spec_digest(spec: ProceduralSpec, n_per_class: int, seed: int, split: str) -> str:
    """A short content key of a generated split (for on-disk caches)."""
    key = repr((sorted(asdict(spec).items()), n_per_class, seed, split, _RENDER_VERSION))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


_RENDER_VERSION = 1  # bump when render_image changes its output, to invalidate caches
_MEMO: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_MEMO_MAX = 6


def _stored(path: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The arrays of a cache entry (a file, or an object under ``--storage``), or None."""
    if path is None:
        return None
    try:
        data = storage.read_bytes(path)
    except FileNotFoundError:
        return None
    with np.load(io.BytesIO(data)) as f:
        return f["images"], f["labels"]


def _cached_generate(
    spec: ProceduralSpec, n_per_class: int, seed: int, split: str, cache_dir: str | Path | None
) -> tuple[np.ndarray, np.ndarray]:
    key = spec_digest(spec, n_per_class, seed, split)
    path = storage.join(cache_dir, f"procedural-{key}.npz") if cache_dir is not None else None
    arrays = _MEMO.get(key) or _stored(path)
    if arrays is None:
        arrays = generate(spec, n_per_class, seed, split)
    if path is not None and not storage.exists(path):
        buffer = io.BytesIO()
        np.savez(buffer, images=arrays[0], labels=arrays[1])
        storage.write_bytes(path, buffer.getvalue())
    images, labels = arrays
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = (images, labels)
    return images, labels


class ProceduralImages(Dataset):
    """A split of procedural images as a torch Dataset of ``(transform(PIL RGB), label)``.

    The split is generated once at construction (about 20k 32-px images in a few seconds) and
    memoised in-process, so several loaders over the same split share one array; pass
    ``cache_dir`` to also keep it on disk across processes (e.g. Ray workers).

    Args:
        spec: the image family.
        split: ``"train"``, ``"val"`` or ``"test"`` -- each split uses its own random stream,
            so the same ``seed`` gives disjoint train and val images.
        n_per_class: images per class.
        seed: dataset seed (>= 0).
        transform: applied to each PIL RGB image; None returns the PIL image itself.
        cache_dir: optional folder for an ``.npz`` copy of the generated arrays.
    """

    def __init__(
        self,
        spec: ProceduralSpec,
        split: str = "train",
        n_per_class: int = 100,
        seed: int = 0,
        transform: Callable | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.spec = spec
        self.split = split
        self.seed = seed
        self.transform = transform
        self.images, self.labels = _cached_generate(spec, n_per_class, seed, split, cache_dir)
        self.num_classes = spec.num_classes
        self.classes = [spec.class_name(c) for c in range(spec.num_classes)]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int):
        img = Image.fromarray(self.images[index], mode="RGB")
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[index])


def with_classes(spec: ProceduralSpec, num_classes: int) -> ProceduralSpec:
    """The same image family with a different class count (e.g. 8 classes for tests)."""
    return replace(spec, num_classes=num_classes)
