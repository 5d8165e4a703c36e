"""The baseline: ``python -m bench.bare_app --port N``, a bare FastAPI ``return {}`` at ``POST /bare``."""

# Same uvicorn settings as ``dcp serve`` (auto loop and HTTP parser, access log at info), so a ratio to it
# shows what DCP's own work costs on top of the framework.

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

PATH = "/bare"

app = FastAPI()


@app.post(PATH)
async def bare() -> dict[str, str]:
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info")).run()


if __name__ == "__main__":
    main()
