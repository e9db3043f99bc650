"""Run every benchmark script in this folder (``make bench``); each prints its table and writes results/<name>.json.

Extra arguments are passed to every script; ``--quick`` only to the scripts that offer it (the others run their
default, already short, protocol). ``--only NAME[,NAME]`` picks scripts.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated script names (without .py)")
    args, passthrough = parser.parse_known_args()
    wanted = {n for n in args.only.split(",") if n}
    scripts = sorted(
        p for p in HERE.glob("*.py") if p.name not in {"run_all.py"} and not p.name.startswith("_")
    )
    failed = []
    for script in scripts:
        if wanted and script.stem not in wanted:
            continue
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.perf_counter()
        offers_quick = '"--quick"' in script.read_text()
        args = [a for a in passthrough if a != "--quick" or offers_quick]
        code = subprocess.call([sys.executable, str(script), *args])
        print(f"=== {script.stem}: exit {code} after {time.perf_counter() - start:.0f} s ===", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
