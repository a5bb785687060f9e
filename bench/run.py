"""Run the benchmarks: `make bench` runs all, `make bench BENCH=word` those whose name has the word.

Each benchmark is a module `bench/bench_<name>.py` with a `main()` that prints one line per figure:
`BENCH <name> <value> <unit> ratio=<r> baseline=<what>`, the baseline measured in the same run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def discover(word: str) -> list[Path]:
    return sorted(p for p in HERE.glob("bench_*.py") if word in p.stem.removeprefix("bench_"))


def main(argv: list[str]) -> int:
    word = argv[1] if len(argv) > 1 else ""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    modules = discover(word)
    if not modules:
        print(f"No benchmark matches {word!r}.", file=sys.stderr)
        return 1
    failures = 0
    for path in modules:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        started = time.monotonic()
        print(f"# {path.stem} …", file=sys.stderr, flush=True)
        try:
            module.main()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failures += 1
            print(f"# {path.stem} failed: {exc!r}", file=sys.stderr)
        print(f"# {path.stem} took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
