"""A stand-in for vLLM's OpenAI-compatible server (``python -m vllm.entrypoints.openai.api_server``), for
machines with no GPU: it takes the flags the daemon passes (unknown flags fail as in vLLM's parser), binds
its socket at once but answers only after a load delay (as vLLM does while it loads), and serves
/v1/models, /v1/completions and /v1/chat/completions, streaming or not, with a deterministic reply.

Its behaviour comes from ``stand_in.json`` in the model folder, the way vLLM's comes from the weights:
``ready_after`` seconds (default 0.3), ``never_ready``, ``exit_after_ready`` (seconds, then exit 1),
``ignore_sigterm``. It appends what happens (argv, ready, requests, sigterm, exit) to ``lifecycle.log``
beside stand_in.json, so tests can see that the daemon started and stopped it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vllm-stand-in")
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - vLLM's own default
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--dtype", choices=["auto", "half", "float16", "bfloat16", "float", "float32"])
    parser.add_argument("--disable-uvicorn-access-log", action="store_true")
    return parser.parse_args(argv)


class StandIn:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name = (args.served_model_name or [args.model])[0]
        folder = Path(args.model)
        settings = folder / "stand_in.json"
        self.settings: dict[str, Any] = json.loads(settings.read_text()) if settings.exists() else {}
        self.log_path = folder / "lifecycle.log"

    def note(self, line: str) -> None:
        with self.log_path.open("a") as handle:
            handle.write(f"{os.getpid()} {line}\n")

    def reply(self, body: dict[str, Any]) -> list[str]:
        """One word per token: the reply names the model and echoes the prompt's first words."""
        prompt = body.get("prompt") or " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        words = ["stand-in", "reply", "from", self.name, "to:", *str(prompt).split()]
        return [f"{word} " for word in words[: int(body.get("max_tokens") or 16)]]


def handler_for(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {})
            elif self.path == "/v1/models":
                model = {"id": stand_in.name, "object": "model", "owned_by": "vllm"}
                self._json(
                    200, {"object": "list", "data": [{**model, "max_model_len": stand_in.args.max_model_len}]}
                )
            else:
                self._json(404, {"error": {"message": "Not Found", "type": "NotFoundError", "code": 404}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            chat = self.path == "/v1/chat/completions"
            if self.path not in ("/v1/completions", "/v1/chat/completions"):
                self._json(404, {"error": {"message": "Not Found", "type": "NotFoundError", "code": 404}})
                return
            if body.get("model") != stand_in.name:
                message = f"The model `{body.get('model')}` does not exist."
                self._json(404, {"error": {"message": message, "type": "NotFoundError", "code": 404}})
                return
            stand_in.note(f"request {self.path} stream={bool(body.get('stream'))}")
            words = stand_in.reply(body)
            if body.get("stream"):
                self._stream(
                    words, chat=chat, usage=bool((body.get("stream_options") or {}).get("include_usage"))
                )
            else:
                self._json(200, self._whole(words, chat=chat))

        def _whole(self, words: list[str], *, chat: bool) -> dict[str, Any]:
            text = "".join(words)
            choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            return {
                "id": "cmpl-stand-in",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": stand_in.name,
                "choices": [choice],
                "usage": {
                    "prompt_tokens": 4,
                    "completion_tokens": len(words),
                    "total_tokens": 4 + len(words),
                },
            }

        def _stream(self, words: list[str], *, chat: bool, usage: bool) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            kind = "chat.completion.chunk" if chat else "text_completion"
            base = {
                "id": "cmpl-stand-in",
                "object": kind,
                "created": int(time.time()),
                "model": stand_in.name,
            }
            for word in words:
                piece = {"delta": {"content": word}} if chat else {"text": word}
                self._event({**base, "choices": [{"index": 0, **piece, "finish_reason": None}]})
            if usage:
                counts = {"prompt_tokens": 4, "completion_tokens": len(words), "total_tokens": 4 + len(words)}
                self._event({**base, "choices": [], "usage": counts})
            self.wfile.write(b"data: [DONE]\n\n")

        def _event(self, data: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        def _json(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def main(argv: list[str]) -> int:
    args = parse(argv)
    stand_in = StandIn(args)
    stand_in.note("argv " + json.dumps(argv))
    settings = stand_in.settings

    def on_sigterm(signum: int, frame: Any) -> None:
        stand_in.note("sigterm")
        if not settings.get("ignore_sigterm"):
            stand_in.note("exit 0")
            os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(stand_in))  # bound and listening now
    if settings.get("never_ready"):
        while True:
            time.sleep(1)
    print("Loading safetensors checkpoint shards:   0% Completed | 0/1", flush=True)
    time.sleep(float(settings.get("ready_after", 0.3)))  # "loading the model"
    print(f"INFO: Started server process; serving {stand_in.name}", flush=True)
    stand_in.note("ready")
    if "exit_after_ready" in settings:
        threading.Timer(
            float(settings["exit_after_ready"]), lambda: (stand_in.note("crash"), os._exit(1))
        ).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
