"""How the renter commands print: results on stdout (text or ``--json``), progress and errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dc1


def sar(halala: int | None) -> str:
    """Integer halala as SAR text, exactly (no float ever touches money)."""
    if halala is None:
        return "-"
    return f"{(Decimal(halala) / 100).quantize(Decimal('0.01'))} SAR"


@dataclass
class Console:
    """The streams are looked up when written to, so a caller (or a test) may redirect them."""

    json: bool = False

    def line(self, text: str = "") -> None:
        self.stream(text + "\n")

    def stream(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def data(self, value: Any) -> None:
        self.line(json.dumps(value, indent=2, default=str, ensure_ascii=False))

    def note(self, text: str) -> None:
        """Progress and summaries: for people, so not in ``--json`` mode."""
        if not self.json:
            print(text, file=sys.stderr, flush=True)

    def fail(self, text: str) -> None:
        print(f"dcp: error: {text}", file=sys.stderr, flush=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            self.line("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    def fields(self, pairs: Sequence[tuple[str, object]]) -> None:
        width = max(len(name) for name, _ in pairs)
        for name, value in pairs:
            if value is not None and value != "":
                self.line(f"{name.ljust(width)}  {value}")


@dataclass
class LiveOutput:
    """Follows a job's events: text as it is generated (tokens, a script's lines) on stdout; progress, and
    the daemon's notes on other jobs (``loading the model``), on stderr."""

    console: Console
    logs_are_output: bool = False  # a script's log lines are its output
    printed: str = ""
    _last: str = field(default="", repr=False)

    def __call__(self, event: dc1.Event) -> None:
        if event.type == "tokens":
            self._print(event.text)
        elif event.type == "log" and self.logs_are_output:
            self._print(f"{event.data.get('line', '')}\n")
        elif event.type == "log":
            self.console.note(str(event.data.get("line", "")))
        elif event.type == "status" and event.status != self._last:
            self._last = event.status or ""
            position = event.data.get("queue_position")
            queued = f" (queue position {position})" if event.status == "pending" and position else ""
            self._progress(f"{event.status}{queued}")
        elif event.type == "progress":
            self._progress(f"{event.progress}%")

    def finish(self, final: str | None) -> None:
        """Print what the stream did not: all of ``final`` if nothing or something else came live."""
        final, printed = final or "", self.printed
        if final.startswith(printed):
            rest = final[len(printed) :]
        elif final.startswith(printed.rstrip()) and not final[len(printed.rstrip()) :].strip():
            rest = ""  # the same text but for trailing whitespace
        else:
            rest = ("\n" if not printed.endswith("\n") else "") + final
        whole = self.printed + rest
        if not self.console.json:
            self.console.stream(rest + ("\n" if whole and not whole.endswith("\n") else ""))

    def _print(self, text: str) -> None:
        if not self.console.json:
            self.printed += text
            self.console.stream(text)

    def _progress(self, text: str) -> None:
        # On its own line, so it never splits generated text printed on stdout.
        self.console.note(f"[{text}]")
