"""How well `preprocessing.quality` tells occluded faces from clear ones, on real photos.

    python -m benchmarks.quality_eval [--identities 300] [--synthetic 200]

Runs the server's detector step in-process (`benchmarks.inprocess`: the built models in ONNX
Runtime, no Triton) and prints:

- the false-occlusion rate on clear photos: the first LFW image of the first ``--identities``
  identities (sorted by name), and every non-LFW photo in ``faces/``; photos that a person
  looked at and found really occluded (`EVAL_SET_OCCLUDED`) are counted apart;
- the detection rate on real occluded LFW photos picked by eye from all of LFW
  (`REAL_SUNGLASSES`, `REAL_MOUTH_COVERED`);
- per synthetic occluder (dark sunglasses, a black bar over the eyes, a medical mask, a
  skin-coloured hand over the mouth, painted on the first ``--synthetic`` clear LFW photos),
  how often the intended region is flagged and how often another one is. The detector runs
  again on the painted photo, as the server would, and its landmarks are used: an occluder
  moves them. Faces it no longer finds are counted apart.

The synthetic occluders here are also what `tests/unit/test_quality.py` paints.
Results: `benchmarks/quality.md`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from benchmarks.inprocess import InProcessPipeline
from benchmarks.paths import DATA
from preprocessing.alignment import CHIP_TEMPLATE, similarity_transform
from preprocessing.detection import Face
from preprocessing.quality import OCCLUSION_THRESHOLD, FaceQuality, measure

# Photos of the two clear evaluation sets that a person looked at (all 300 + 354 chips) and
# found really occluded; they are counted apart from the false-occlusion rate.
EVAL_SET_OCCLUDED = {
    "Abbas_Kiarostami/Abbas_Kiarostami_0001.jpg": "dark sunglasses",
    "Adrian_Annus/Adrian_Annus_0001.jpg": "hand and glass over the mouth",
    "Alisha_Richman/Alisha_Richman_0001.jpg": "finger across the lips",
    "Andy_Dick/Andy_Dick_0001.jpg": "dark sunglasses",
    "Anil_Ramsook/Anil_Ramsook_0001.jpg": "dark sunglasses",
    "Annie-Jeanne_Reynaud/Annie-Jeanne_Reynaud_0001.jpg": "dark sunglasses",
    "Barack_Obama/glint360k_147.png": "dark sunglasses",
    "Jennifer_Aniston/glint360k_4478.png": "dark sunglasses",
    "Jessica_Alba/glint360k_4901.png": "dark sunglasses",
    "Jessica_Alba/glint360k_4912.png": "gradient-tinted sunglasses",
    "Jessica_Alba/glint360k_4945.png": "white-framed sunglasses",
    "Keira_Knightley/glint360k_5857.png": "dark sunglasses",
    "Keira_Knightley/glint360k_5881.png": "blue mirrored sunglasses",
    "Keira_Knightley/glint360k_5928.png": "dark sunglasses",
    "Leonardo_DiCaprio/glint360k_5999.png": "dark sunglasses",
    "Victoria_Beckham/glint360k_10090.png": "dark sunglasses",
    "Victoria_Beckham/glint360k_10129.png": "dark sunglasses",
    "Will_Smith/glint360k_10222.png": "dark sunglasses",
}
# Dark sunglasses, found by eye in all of LFW (kept out of the faces the thresholds were tuned on).
REAL_SUNGLASSES = (
    "Abbas_Kiarostami/Abbas_Kiarostami_0001.jpg", "Angelina_Jolie/Angelina_Jolie_0011.jpg",
    "Anil_Ramsook/Anil_Ramsook_0001.jpg", "Annie-Jeanne_Reynaud/Annie-Jeanne_Reynaud_0001.jpg",
    "Arnold_Schwarzenegger/Arnold_Schwarzenegger_0008.jpg", "Bill_Paxton/Bill_Paxton_0002.jpg",
    "Billy_Bob_Thornton/Billy_Bob_Thornton_0001.jpg", "Candice_Bergen/Candice_Bergen_0001.jpg",
    "Carla_Sullivan/Carla_Sullivan_0001.jpg", "Charles_Taylor/Charles_Taylor_0005.jpg",
    "Dick_Vermeil/Dick_Vermeil_0001.jpg", "Fernando_Vargas/Fernando_Vargas_0002.jpg",
    "Fernando_Vargas/Fernando_Vargas_0003.jpg", "Heath_Ledger/Heath_Ledger_0002.jpg",
    "Jack_Nicholson/Jack_Nicholson_0001.jpg", "James_Cameron/James_Cameron_0001.jpg",
    "Jane_Fonda/Jane_Fonda_0002.jpg", "Jessica_Lange/Jessica_Lange_0001.jpg",
    "Joey_Mantia/Joey_Mantia_0001.jpg", "Juan_Pablo_Montoya/Juan_Pablo_Montoya_0007.jpg",
    "Keanu_Reeves/Keanu_Reeves_0005.jpg", "Keanu_Reeves/Keanu_Reeves_0006.jpg",
    "Keanu_Reeves/Keanu_Reeves_0007.jpg", "Kelly_Osbourne/Kelly_Osbourne_0001.jpg",
    "Kevin_Costner/Kevin_Costner_0002.jpg", "Leon_Lai/Leon_Lai_0001.jpg",
    "MC_Hammer/MC_Hammer_0001.jpg", "Marc_Anthony/Marc_Anthony_0001.jpg",
    "Melanie_Griffith/Melanie_Griffith_0001.jpg",
    "Michelangelo_Antonioni/Michelangelo_Antonioni_0001.jpg",
    "Mick_Jagger/Mick_Jagger_0002.jpg", "Nicholas_Tse/Nicholas_Tse_0001.jpg",
    "Oracene_Williams/Oracene_Williams_0001.jpg", "Park_Na-kyong/Park_Na-kyong_0001.jpg",
    "Paula_Radcliffe/Paula_Radcliffe_0006.jpg", "Pedro_Almodovar/Pedro_Almodovar_0003.jpg",
    "Richard_Gere/Richard_Gere_0003.jpg", "Samuel_Waksal/Samuel_Waksal_0002.jpg",
    "Sharon_Stone/Sharon_Stone_0001.jpg", "Steffi_Graf/Steffi_Graf_0004.jpg",
    "Susan_Sarandon/Susan_Sarandon_0004.jpg", "Sylvester_Stallone/Sylvester_Stallone_0007.jpg",
    "Todd_Parrott/Todd_Parrott_0001.jpg", "Victoria_Beckham/Victoria_Beckham_0003.jpg",
    "Will_Smith/Will_Smith_0002.jpg",
)
# A folder held over the mouth and chin; a hand over the mouth.
REAL_MOUTH_COVERED = ("Frank_Bell/Frank_Bell_0001.jpg", "Celine_Dion/Celine_Dion_0003.jpg")


def nearest(faces: list[Face], x: float, y: float) -> Face | None:
    """The face whose box centre is closest to (x, y), or None if there is none."""
    if not faces:
        return None
    return min(faces, key=lambda f: (f.center[0] - x) ** 2 + (f.center[1] - y) ** 2)


def central_face(detector: InProcessPipeline, image_bgr: np.ndarray) -> Face | None:
    """The face nearest the photo's centre (LFW's subject), or None."""
    height, width = image_bgr.shape[:2]
    return nearest(detector.detect(image_bgr), width / 2, height / 2)


def largest_face(detector: InProcessPipeline, image_bgr: np.ndarray) -> Face | None:
    """The largest face (the subject of the non-LFW photos), or None."""
    faces = detector.detect(image_bgr)
    return max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None


def redetect(detector: InProcessPipeline, image_bgr: np.ndarray, before: Face) -> Face | None:
    """The face found again near `before` in an edited photo, or None if it is gone."""
    found = nearest(detector.detect(image_bgr), *before.center)
    if found is None or np.hypot(*np.subtract(found.center, before.center)) > before.box[2] / 2:
        return None
    return found


# Synthetic occluders. Shapes are drawn in the chip template's coordinates (eyes at y ~45,
# nose tip at y ~77, mouth corners at y ~101, 150 px square) and mapped onto the photo, so
# they follow the face's position, size and roll. Each has a soft edge, shading and noise.

Occluder = Callable[[np.ndarray, Face, np.random.Generator], np.ndarray]


def _template_to_photo(face: Face) -> np.ndarray:
    return cv2.invertAffineTransform(similarity_transform(face.landmarks, CHIP_TEMPLATE))


def _template_grid(face: Face, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Template coordinates of every photo pixel."""
    matrix = similarity_transform(face.landmarks, CHIP_TEMPLATE)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return (matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2],
            matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2])


def _paint(image: np.ndarray, face: Face, polygons: list[np.ndarray], colour: np.ndarray,
           opacity: float, rng: np.random.Generator, edge_px: float = 1.0) -> np.ndarray:
    """Blend `colour` (H x W x 3) into `image` inside the polygons (template coordinates)."""
    height, width = image.shape[:2]
    to_photo = _template_to_photo(face)
    mask = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        points = np.asarray(polygon, np.float64) @ to_photo[:, :2].T + to_photo[:, 2]
        cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    photo_px_per_template_px = float(np.sqrt(abs(np.linalg.det(to_photo[:, :2]))))
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0),
                             max(0.5, edge_px * photo_px_per_template_px))[..., None] * opacity
    noise = rng.normal(0.0, 3.0, (height, width, 1)).astype(np.float32)
    out = image.astype(np.float32) * (1 - alpha) + (colour + noise) * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def _ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def sunglasses(image: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
    """Two dark lenses and a bridge, lighter towards the bottom, with a specular streak."""
    (rx, ry), (lx, ly) = CHIP_TEMPLATE[0], CHIP_TEMPLATE[1]
    ax, ay, dy = rng.uniform(18, 23), rng.uniform(13, 17), rng.uniform(-2, 3)
    bridge = np.array([[rx + ax - 3, ry + dy - 4], [lx - ax + 3, ly + dy - 4],
                       [lx - ax + 3, ly + dy], [rx + ax - 3, ry + dy]])
    polygons = [_ellipse(rx, ry + dy, ax, ay), _ellipse(lx, ly + dy, ax, ay), bridge]
    tx, ty = _template_grid(face, *image.shape[:2])
    grey = rng.uniform(8, 45) + 25 * np.clip((ty - 30) / 30, 0, 1)
    streak = 30 * np.exp(-((tx - 0.8 * ty - rng.uniform(0, 40)) ** 2) / 8)
    colour = (grey + streak)[..., None] + rng.uniform(-6, 6, 3).astype(np.float32)
    return _paint(image, face, polygons, colour.astype(np.float32), rng.uniform(0.88, 0.97), rng)


def black_bar(image: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
    """A black censor bar across both eyes."""
    y0, y1 = rng.uniform(28, 34), rng.uniform(56, 62)
    bar = np.array([[5, y0], [145, y0], [145, y1], [5, y1]])
    colour = np.full((*image.shape[:2], 3), rng.uniform(0, 20), np.float32)
    return _paint(image, face, [bar], colour, 1.0, rng, edge_px=0.3)


MASK_COLOURS_BGR = ((230, 205, 170), (240, 240, 238), (215, 190, 150), (200, 220, 225))


def medical_mask(image: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
    """A light blue, white, blue or pale green mask from the nose bridge to below the chin,
    shaded towards the sides, with three pleats."""
    top = rng.uniform(58, 64)
    outline = np.array([[12, top + 8], [50, top], [75, top - 4], [100, top], [138, top + 8],
                        [132, 125], [105, 145], [75, 150], [45, 145], [18, 125]])
    base = np.array(MASK_COLOURS_BGR[rng.integers(len(MASK_COLOURS_BGR))], np.float32)
    base += rng.uniform(-10, 10, 3).astype(np.float32)
    tx, ty = _template_grid(face, *image.shape[:2])
    shade = 1 - 0.15 * np.abs(tx - 75) / 60
    pleats = 1 - 0.10 * sum(np.exp(-((ty - y) ** 2) / 4) for y in (95, 110, 125))
    colour = base * (shade * pleats)[..., None]
    return _paint(image, face, [outline], colour.astype(np.float32), 1.0, rng)


def cheek_colour(image: np.ndarray, face: Face) -> np.ndarray:
    """The median BGR colour of the face's two cheeks."""
    chip = cv2.warpAffine(image, similarity_transform(face.landmarks, CHIP_TEMPLATE), (150, 150))
    cheeks = np.concatenate(
        [chip[66:86, 30:50].reshape(-1, 3), chip[66:86, 100:120].reshape(-1, 3)]
    )
    return np.median(cheeks, axis=0).astype(np.float32)


def hand(image: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
    """A patch of the face's own cheek colour over the mouth, shaded from top to bottom, with
    darker creases between the fingers."""
    outline = np.array([[30, 92], [120, 88], [128, 100], [124, 128], [30, 132], [24, 112]])
    outline = outline + [rng.uniform(-4, 4), rng.uniform(-1, 3)]
    tx, ty = _template_grid(face, *image.shape[:2])
    shade = 1.05 - 0.15 * (ty - 88) / 44
    creases = 1 - 0.12 * sum(np.exp(-((ty - y) ** 2) / 2) for y in (99, 110, 121))
    colour = cheek_colour(image, face) * (shade * creases)[..., None]
    return _paint(image, face, [outline], colour.astype(np.float32), 1.0, rng)


# Occluder name -> (function, the region it covers).
OCCLUDERS: dict[str, tuple[Occluder, tuple[str, ...]]] = {
    "sunglasses": (sunglasses, ("eyes",)),
    "black bar over the eyes": (black_bar, ("eyes",)),
    "medical mask": (medical_mask, ("nose", "mouth")),
    "skin-coloured hand over the mouth": (hand, ("mouth",)),
}
REGIONS = ("eyes", "nose", "mouth")


def flagged(quality: FaceQuality) -> set[str]:
    """The regions at or above the occlusion threshold."""
    return {r for r in REGIONS if getattr(quality.occlusion, r) >= OCCLUSION_THRESHOLD}


def first_lfw_images(data: Path, identities: int) -> list[Path]:
    """The first LFW image of the first `identities` identities that have one, by name."""
    photos = []
    for folder in sorted(p for p in (data / "faces").iterdir() if p.is_dir()):
        lfw = sorted(folder.glob(f"{folder.name}_0*.jpg"))
        if lfw:
            photos.append(lfw[0])
        if len(photos) == identities:
            break
    return photos


def non_lfw_images(data: Path) -> list[Path]:
    """Every identity-labelled photo that does not come from LFW."""
    return sorted(
        p for p in (data / "faces").rglob("*")
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        and not p.name.startswith(f"{p.parent.name}_0")
    )


def _relative(path: Path, data: Path) -> str:
    return path.relative_to(data / "faces").as_posix()


def evaluate_clear(detector: InProcessPipeline, photos: list[Path], data: Path,
                   pick: Callable[[InProcessPipeline, np.ndarray], Face | None]) -> dict:
    rows, seconds = [], []
    for path in photos:
        image = cv2.imread(str(path))
        face = pick(detector, image) if image is not None else None
        if face is None:
            continue
        started = time.perf_counter()
        quality = measure(image, face)
        seconds.append(time.perf_counter() - started)
        rows.append((_relative(path, data), flagged(quality)))
    occluded_by_eye = [r for r in rows if r[0] in EVAL_SET_OCCLUDED]
    clear = [r for r in rows if r[0] not in EVAL_SET_OCCLUDED]
    return {
        "faces": len(rows),
        "clear": len(clear),
        "false": [(name, sorted(regions)) for name, regions in clear if regions],
        "occluded_by_eye": [(name, sorted(regions)) for name, regions in occluded_by_eye],
        "ms_per_face": 1000 * float(np.mean(seconds)) if seconds else float("nan"),
    }


def evaluate_synthetic(detector: InProcessPipeline, photos: list[Path], data: Path,
                       count: int, seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    results = {name: {"faces": 0, "lost": 0, "right": 0, "wrong": 0} for name in OCCLUDERS}
    used = 0
    for path in photos:
        if used == count:
            break
        if _relative(path, data) in EVAL_SET_OCCLUDED:
            continue
        image = cv2.imread(str(path))
        face = central_face(detector, image)
        if face is None:
            continue
        used += 1
        for name, (occluder, regions) in OCCLUDERS.items():
            result = results[name]
            result["faces"] += 1
            painted = occluder(image, face, rng)
            found = redetect(detector, painted, face)
            if found is None:
                result["lost"] += 1
                continue
            hit = flagged(measure(painted, found))
            result["right"] += set(regions) <= hit
            result["wrong"] += bool(hit - set(regions))
    return results


def evaluate_real(detector: InProcessPipeline, names: tuple[str, ...], data: Path,
                  region: str) -> dict:
    found, hits, missed = 0, 0, []
    for name in names:
        image = cv2.imread(str(data / "faces" / name))
        face = central_face(detector, image) if image is not None else None
        if face is None:
            continue
        found += 1
        if region in flagged(measure(image, face)):
            hits += 1
        else:
            missed.append(name)
    return {"photos": len(names), "faces": found, "flagged": hits, "missed": missed}


def _percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else "0/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--identities", type=int, default=300)
    parser.add_argument("--synthetic", type=int, default=200)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    detector = InProcessPipeline()
    lfw = first_lfw_images(args.data, args.identities)

    print(f"occlusion threshold {OCCLUSION_THRESHOLD}")
    for label, photos, pick in (
        (f"clear LFW (first image of the first {args.identities} identities)", lfw, central_face),
        ("clear non-LFW photos in faces/", non_lfw_images(args.data), largest_face),
    ):
        result = evaluate_clear(detector, photos, args.data, pick)
        print(f"\n{label}: {len(photos)} photos, {result['faces']} faces, "
              f"{result['ms_per_face']:.2f} ms per measure")
        print(f"  false occlusion: {_percent(len(result['false']), result['clear'])}")
        for name, regions in result["false"]:
            print(f"    {name}: {', '.join(regions)}")
        print(f"  really occluded (seen by eye): {len(result['occluded_by_eye'])}")
        for name, regions in result["occluded_by_eye"]:
            found = ", ".join(regions) or "nothing"
            print(f"    {name} ({EVAL_SET_OCCLUDED[name]}): flagged {found}")

    print("\nreal occluded LFW photos")
    for label, names, region in (("dark sunglasses -> eyes", REAL_SUNGLASSES, "eyes"),
                                 ("mouth covered -> mouth", REAL_MOUTH_COVERED, "mouth")):
        result = evaluate_real(detector, names, args.data, region)
        print(f"  {label}: {_percent(result['flagged'], result['faces'])} "
              f"({result['photos'] - result['faces']} without a detected face)")
        for name in result["missed"]:
            print(f"    missed: {name}")

    print(f"\nsynthetic occluders on {args.synthetic} clear LFW photos (detector re-run)")
    for name, result in evaluate_synthetic(detector, lfw, args.data, args.synthetic).items():
        seen = result["faces"] - result["lost"]
        print(f"  {name}: right region(s) {_percent(result['right'], seen)}, "
              f"another region {_percent(result['wrong'], seen)}, "
              f"face no longer detected {result['lost']}/{result['faces']}")


if __name__ == "__main__":
    main()
