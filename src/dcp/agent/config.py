"""The daemon's configuration: a TOML-free JSON file written by the installer, overridable by flags."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

DEFAULT_HOME = Path(os.environ.get("DCP_AGENT_HOME", Path.home() / ".dcp-provider"))


class AgentConfig(BaseModel):
    server: str = Field(description="The DCP server's base URL, e.g. https://api.dcp.sa")
    key: str = Field(description="This provider's API key (dc1-provider-…)")
    home: Path = DEFAULT_HOME
    slots: int = Field(1, ge=1, le=64, description="Jobs run at once")
    heartbeat_seconds: float = Field(30.0, gt=0)
    status_port: int = Field(8765, ge=0, le=65535, description="Loopback status page; 0 picks a free port")
    models_dir: Path | None = None
    llm_threads: int = Field(2, ge=1, le=256)
    llm_context: int = Field(4096, ge=256, le=131072)
    container_backend: str = Field("subprocess", description="subprocess or docker")
    container_memory_mib: int = Field(2048, ge=64)
    allow_network: bool = Field(False, description="Let custom_container jobs reach the network if they ask")
    serve_pool: bool = Field(False, description="Serve the /v1 OpenAI-compatible pool with the local engine")
    answer_any_model: bool = Field(
        False, description="Demo only (dcp up): answer every LLM model name with the local small model"
    )
    llm_models_dir: Path | None = Field(
        None, description="Hugging Face model folders vLLM serves, named by their path under it (org/name)"
    )
    image_models_dir: Path | None = Field(
        None, description="Stable Diffusion / SDXL weights in diffusers format, named like llm_models_dir"
    )
    vllm_command: list[str] = Field(
        default_factory=list,
        description="How to start vLLM's OpenAI-compatible server (argv before DCP's flags); empty: "
        "python -m vllm.entrypoints.openai.api_server when vLLM is installed and NVML sees a GPU",
    )
    vllm_ready_seconds: float = Field(900.0, gt=0, description="How long vLLM may take to load a model")
    vllm_stop_grace_seconds: float = Field(15.0, gt=0, description="SIGTERM, then SIGKILL after this")
    vllm_idle_seconds: float = Field(300.0, ge=0, description="Keep vLLM loaded this long after an LLM job")
    pool_model: str | None = Field(
        None, description="The vLLM model the /v1 pool serves (default: the first)"
    )
    release_key: str = Field(
        "",
        pattern=r"^([0-9a-fA-F]{64})?$",
        description="The server's Ed25519 release key (hex), pinned by the installer; updates need it",
    )
    auto_update: bool = Field(True, description="Install optional updates too, not only required ones")
    update_retry_seconds: float = Field(3600.0, gt=0, description="Wait after an update that failed")

    @field_validator("vllm_command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        return shlex.split(value) if isinstance(value, str) else value

    @property
    def state_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def model_cache(self) -> Path:
        return self.models_dir or self.home / "models"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the key
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=2))


def load(path: Path, **overrides: object) -> AgentConfig:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update({key: value for key, value in overrides.items() if value is not None})
    return AgentConfig.model_validate(data)
