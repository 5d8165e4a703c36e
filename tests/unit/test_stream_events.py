"""The gateway's reading of a provider's server-sent events, whatever pieces they arrive in."""

from __future__ import annotations

import json

import pytest

from dcp.gateway.streaming import MAX_EVENT_CHARS, StreamEvents
from dcp.jobs.relay import RelayError

TOKEN = 'data: {"choices": [{"delta": {"content": "Ri"}}]}'
USAGE = {"prompt_tokens": 11, "completion_tokens": 3}
USAGE_ONLY = "data: " + json.dumps({"choices": [], "usage": USAGE})
STREAM = f"{TOKEN}\n\n{USAGE_ONLY}\n\ndata: [DONE]\n\n"


@pytest.mark.parametrize("size", [1, 2, 7, len(STREAM)])
def test_events_split_across_pieces_of_any_size(size):
    events = StreamEvents(client_wants_usage=True)
    sent = [event for at in range(0, len(STREAM), size) for event in events.feed(STREAM[at : at + size])]
    assert sent == [TOKEN + "\n\n", USAGE_ONLY + "\n\n"]
    assert events.usage == USAGE and events.completed


def test_the_usage_chunk_is_kept_for_billing_but_not_sent_unless_asked():
    events = StreamEvents(client_wants_usage=False)
    with_text = "data: " + json.dumps({"choices": [{"delta": {"content": "dh"}}], "usage": USAGE})
    sent = events.feed(f"{with_text}\n\n{USAGE_ONLY}\n\n")
    assert [json.loads(event[6:]) for event in sent] == [{"choices": [{"delta": {"content": "dh"}}]}]
    assert events.usage == USAGE and not events.completed


def test_a_stream_without_event_boundaries_is_refused():
    events = StreamEvents(client_wants_usage=False)
    events.feed("x" * MAX_EVENT_CHARS)
    with pytest.raises(RelayError):
        events.feed("x")
