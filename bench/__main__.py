"""``python -m bench <scenario>``: run one benchmark (or ``all``) and print its ratios."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from bench import dispatch, gateway, soak

SCENARIOS = {"dispatch": dispatch.run, "gateway": gateway.run, "soak": soak.run}
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    for name, scenario in SCENARIOS.items():
        if args.scenario not in (name, "all"):
            continue
        result = asyncio.run(scenario())
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
