"""The OpenAI request bodies the gateway accepts. Rule for other fields: unknown fields are refused (400,
naming the field) so that a typo never silently changes what a renter pays for. OpenAI's fields for what is
not served (tools, log probabilities, a response format) are accepted only with the values that ask for
nothing (null, false, an empty list, ``{"type": "text"}``), as SDKs send them by default, and not passed
on."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(max_length=400_000)]
Stop = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


def _joined_text_parts(value: object) -> object:
    """Content as OpenAI's list of parts (as many SDKs send it): its text parts, joined. No other kind of
    part (images, audio) is served."""
    if not isinstance(value, list):
        return value
    if not value or not all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in value
    ):
        raise ValueError('parts must be text parts, {"type": "text", "text": "..."}')
    return "".join(part["text"] for part in value)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[Text, BeforeValidator(_joined_text_parts, json_schema_input_type=str | list[TextPart])]
    name: Annotated[str, StringConstraints(max_length=64)] | None = None


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: Stop | list[Stop] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: Literal[1] | None = 1
    seed: int | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    # Asking for nothing that is not served (see the module's rule): accepted, not passed on.
    logprobs: Literal[False] | None = None
    top_logprobs: None = None
    tools: Annotated[list[Any], Field(max_length=0)] | None = None
    tool_choice: Literal["none"] | None = None
    parallel_tool_calls: bool | None = None
    response_format: TextFormat | None = None

    def upstream(self, *, max_tokens: int) -> dict[str, Any]:
        """The body sent to the provider's engine: the worst case made explicit, always streamed with usage
        reported. A whole answer comes only once all of it is generated, so a slow first token (a provider
        to fail over from) could not be told from a long answer; a stream's first token can."""
        body = self.model_dump(exclude_none=True, exclude=_NOT_PASSED_ON)
        body["max_tokens"] = max_tokens
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body


_NOT_PASSED_ON = {
    "max_completion_tokens",
    "user",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
}

# A token is at least one byte of text, so a prompt's bytes bound its tokens before it is tokenised; but
# engines add their own: a chat template's role markers around each message, and per request the
# beginning-of-text token, the assistant's turn, and in some templates a system header (Llama 3.1's dated
# one is about 30 tokens). Billing is capped at the bound, so one too low under-billed every short chat.
TEMPLATE_TOKENS_PER_MESSAGE = 8
TEMPLATE_TOKENS_PER_CHAT = 64


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1, max_length=512)

    def prompt_text(self) -> str:
        return "\n".join(message.content for message in self.messages)

    def prompt_bound(self) -> int:
        """At least as many tokens as the engine will count for the prompt."""
        text = sum(len(m.content.encode()) + len((m.name or "").encode()) for m in self.messages)
        return text + TEMPLATE_TOKENS_PER_MESSAGE * len(self.messages) + TEMPLATE_TOKENS_PER_CHAT


def _one_prompt(value: object) -> object:
    """A prompt as OpenAI's list of prompts may hold one: batches (and token ids) are not served."""
    if not isinstance(value, list):
        return value
    if len(value) != 1 or not isinstance(value[0], str):
        raise ValueError("a list of prompts may hold one string: batches and token ids are not served")
    return value[0]


class CompletionRequest(_Sampling):
    prompt: Annotated[Text, BeforeValidator(_one_prompt, json_schema_input_type=str | list[str])]

    def prompt_text(self) -> str:
        return self.prompt

    def prompt_bound(self) -> int:
        """At least as many tokens as the engine will count for the prompt: its text and a BOS token."""
        return len(self.prompt_text().encode()) + 1
