"""Merge the benchmark outputs into bench/results.json and print one table."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> int:
    merged: dict = {"_generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name in ("pull-results.json", "streams-results.json", "fleet-results.json", "webhooks-results.json"):
        path = ROOT / name
        if path.exists():
            data = json.loads(path.read_text())
            figures = data.get("figures", data) if isinstance(data, dict) else {}
            for k, v in figures.items():
                merged[k] = v
    (ROOT / "results.json").write_text(json.dumps(merged, indent=2))
    print(f"{'figure':46} {'value':>14} {'baseline':>10} {'target':>10}  pass")
    for k, v in merged.items():
        if k.startswith("_") or not isinstance(v, dict) or "value" not in v:
            continue
        value = f"{v['value']} {v.get('unit', '')}".strip()
        print(f"{k:46} {value:>14} {str(v.get('baseline', '')):>10} {str(v.get('target', '')):>10}  {v.get('pass', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
