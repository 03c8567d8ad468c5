"""A re-ingest of an unchanged folder, and `rag --help`: what they cost as whole commands.

Builds (once, cached in --work) a folder of N small text files and ingests it; then times
`rag ingest FOLDER` on the unchanged folder as a subprocess (interpreter start included), the work the
ingestor itself reports, whether a model was loaded, and `rag --help`. Targets: the no-op's work under 1 s
for 500 files, `rag --help` under 0.5 s.

Usage: python -m bench.noop [--files 500] [--runs 3] [--work /tmp/rag-bench-noop]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rag(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/rag-bench-noop")
    args = parser.parse_args()
    work = Path(args.work) / f"n{args.files}"
    docs, index = work / "docs", work / "index"
    if not (index / "manifest.json").exists():
        docs.mkdir(parents=True, exist_ok=True)
        for i in range(args.files):
            (docs / f"nota_{i:05d}.txt").write_text(
                f"Nota {i}. El equipo {i % 37} se revisó el día {i % 28 + 1}. Próxima revisión en {i % 12 + 1} meses.",
                encoding="utf-8")
        seconds, _ = _rag("ingest", str(docs), "--index", str(index), "--quiet")
        print(f"built: {args.files} files ingested in {seconds:.1f} s (once)")
    walls, works = [], []
    for _ in range(args.runs):
        seconds, done = _rag("-v", "ingest", str(docs), "--index", str(index), "--quiet")
        walls.append(seconds)
        works.append(float(done.stdout.split("seconds: ")[1].split(",")[0]))
        loaded = "loading embedder" in done.stderr
    helps = [_rag("--help")[0] for _ in range(args.runs)]
    bare = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    result = {"files": args.files, "noop_wall_s": round(statistics.median(walls), 3),
              "noop_work_s": round(statistics.median(works), 3), "model_loaded": loaded,
              "help_wall_s": round(statistics.median(helps), 3), "python_start_s": round(statistics.median(bare), 3)}
    print(f"no-op re-ingest of {args.files} unchanged files: {result['noop_wall_s']} s as a command, "
          f"{result['noop_work_s']} s of work; model loaded: {loaded}; rag --help {result['help_wall_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
