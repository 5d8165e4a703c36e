"""``python -m bench <scenario>``: run one benchmark (or ``all``) and print its ratios."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from bench import dispatch, e2e, gateway, heartbeat, placement, scale_out, soak, submit

SCENARIOS = {
    "dispatch": dispatch.run,
    "heartbeat": heartbeat.run,
    "submit": submit.run,
    "placement": placement.run,
    "gateway": gateway.run,
    "e2e": e2e.run,
    "scale-out": scale_out.run,
    "soak": soak.run,
}
NOT_IN_ALL = frozenset({"soak"})  # ten minutes of its own: run it by name
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    for name, scenario in SCENARIOS.items():
        if args.scenario != name and (args.scenario != "all" or name in NOT_IN_ALL):
            continue
        print(f"== {name}", flush=True)
        result = asyncio.run(scenario())
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result["summary"], indent=2), flush=True)
    print(f"== {args.scenario}: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
