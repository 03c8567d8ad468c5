"""QA on scanned copies of a QA set's documents, beside the originals: what OCR costs the answers.

The PDFs a QA set names are rasterised into image-only PDFs (no text layer), as a scanner would make them:
rendered at ``--dpi``, turned by up to ±1°, saved as JPEG at quality 75. Both folders are ingested with
the default settings (the scanned one through OCR) and the set is answered over each; the metrics are
printed side by side (latencies in ms), with each ingest's summary (pages by OCR, their confidence).

Usage: python -m eval.scanned eval/sets/statutes_es.jsonl --docs ../shared/corpus/pdf_text --out /tmp/scanned
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
from pathlib import Path

from eval.configs import EvalConfig
from eval.qa import load_qa
from eval.runner import Evaluator
from rag.offline import ensure_offline
from rag.settings import Settings

METRICS = ["answer_contains_gold", "token_f1", "citation_accuracy", "false_abstention", "abstention_unanswerable",
           "abstention_near_miss", "abstention_far_off", "answer_contains_gold_paraphrase"]


def rasterise(source: Path, target: Path, dpi: int = 200, seed: int = 0, pages: int | None = None) -> int:
    """An image-only copy of ``source`` (its first ``pages``, scanned: slightly turned, JPEG-compressed); its
    page count."""
    import pypdfium2 as pdfium
    from PIL import Image

    rng = random.Random(f"{source.name}{seed}")
    pdf = pdfium.PdfDocument(source)
    images = []
    try:
        for number, page in enumerate(pdf):
            if pages is not None and number >= pages:
                break
            image = page.render(scale=dpi / 72, grayscale=True).to_pil()
            image = image.rotate(rng.uniform(-1, 1), resample=Image.BICUBIC, expand=False, fillcolor=255)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=75)
            images.append(Image.open(io.BytesIO(buffer.getvalue())))
    finally:
        pdf.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(target, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi))
    return len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description="QA over scanned copies of the documents vs the originals")
    parser.add_argument("qa", type=Path)
    parser.add_argument("--docs", type=Path, required=True, help="folder holding the QA set's documents")
    parser.add_argument("--out", type=Path, required=True, help="work folder (copies, indexes, results)")
    parser.add_argument("--dpi", type=int, default=200)
    args = parser.parse_args()
    ensure_offline()
    items = load_qa(args.qa)
    sources = sorted({i.source for i in items if i.source})
    text_dir, scan_dir = args.out / "text", args.out / "scanned"
    for name in sources:
        original = args.docs / name
        if not (text_dir / name).exists():
            text_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, text_dir / name)
        if not (scan_dir / name).exists():
            print(f"rasterising {name}: {rasterise(original, scan_dir / name, args.dpi)} pages at {args.dpi} dpi")
    evaluator = Evaluator(Settings(index_dir=args.out / "index"))
    config = EvalConfig.from_settings(evaluator.settings)
    results = {}
    for label, folder in (("text layer", text_dir), ("scanned (OCR)", scan_dir)):
        results[label] = evaluator.qa(args.qa, folder, items, [config]).results[0]
    for folder, summary in evaluator.ingest_summaries.items():
        print(f"\n== ingest of {folder}\n{summary}")
    print(f"\n{'metric':<34}" + "".join(f"{label:>16}" for label in results))
    for metric in METRICS + ["answer_p50", "answer_p95"]:
        values = [r.metrics.get(metric, r.latency_ms.get(metric)) for r in results.values()]
        if all(v is None for v in values):
            continue
        print(f"{metric:<34}" + "".join(f"{v:>16.3f}" if v is not None else f"{'-':>16}" for v in values))
    (args.out / "results.json").write_text(json.dumps(
        {label: {"metrics": r.metrics, "latency_ms": r.latency_ms, "rows": r.rows} for label, r in results.items()},
        ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    print(f"\nrows: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
