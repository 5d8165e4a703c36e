"""What the daemon finds it can run: GPUs from NVML (absent here; a fake NVML stands in for a GPU), vLLM,
CUDA, the model folders on disk; and the one rule that refuses a model it cannot serve."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from dcp.agent import capabilities
from dcp.agent.capabilities import VLLM_MODULE_COMMAND, Capabilities, Weights, detect
from dcp.agent.config import AgentConfig
from dcp.agent.daemon import Daemon
from dcp.agent.runtimes.base import JobFailed
from dcp.agent.telemetry import heartbeat_body, read_gpus

GIB = 1024**3


class NVMLError(Exception):
    pass


def fake_nvml(*, gpus: int = 1, driver_loaded: bool = True) -> types.SimpleNamespace:
    """nvidia-ml-py's module as a machine with ``gpus`` H100s shows it (or one whose driver is missing)."""

    def init() -> None:
        if not driver_loaded:
            raise NVMLError("Driver Not Loaded")

    return types.SimpleNamespace(
        NVMLError=NVMLError,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: b"570.86.15",
        nvmlSystemGetCudaDriverVersion=lambda: 12080,
        nvmlDeviceGetCount=lambda: gpus,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetName=lambda handle: "NVIDIA H100 80GB HBM3",
        nvmlDeviceGetMemoryInfo=lambda handle: types.SimpleNamespace(total=80 * GIB, used=2 * GIB),
        nvmlDeviceGetUtilizationRates=lambda handle: types.SimpleNamespace(gpu=37),
        nvmlDeviceGetTemperature=lambda handle, sensor: 51,
        nvmlDeviceGetPowerUsage=lambda handle: 312_000,
    )


def modules(*present: str):
    return lambda name: name in present


@pytest.fixture
def folders(tmp_path):
    """A provider's model folders: two LLMs (one with a chat template) and SD + SDXL pipelines."""
    llm = tmp_path / "llm"
    (llm / "mistralai" / "Mistral-7B-Instruct-v0.2").mkdir(parents=True)
    (llm / "mistralai" / "Mistral-7B-Instruct-v0.2" / "config.json").write_text("{}")
    (llm / "mistralai" / "Mistral-7B-Instruct-v0.2" / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": "{{ messages }}"})
    )
    (llm / "opt-125m").mkdir()
    (llm / "opt-125m" / "config.json").write_text("{}")
    (llm / "empty").mkdir()
    images = tmp_path / "images"
    for name, pipeline in [
        ("stabilityai/stable-diffusion-xl-base-1.0", "StableDiffusionXLPipeline"),
        ("sd-1.5", "StableDiffusionPipeline"),
        ("flux", "FluxPipeline"),
    ]:
        (images / name / "unet").mkdir(parents=True)
        (images / name / "model_index.json").write_text(json.dumps({"_class_name": pipeline}))
        (images / name / "unet" / "config.json").write_text("{}")
    return {"llm_models_dir": llm, "image_models_dir": images}


def _config(tmp_path, **fields) -> AgentConfig:
    return AgentConfig(server="http://server", key="dc1-provider-x", home=tmp_path / "home", **fields)


class TestWithoutAGpu:
    def test_nvml_here_finds_no_gpu_and_nothing_is_invented(self, tmp_path):
        assert read_gpus() == []  # the real nvidia-ml-py on this machine: no driver
        found = detect(_config(tmp_path))
        assert found.gpus == [] and not found.cuda and found.llama_gpu == []

    def test_a_missing_driver_means_no_vllm_even_if_installed(self, tmp_path, folders, monkeypatch):
        def probed() -> bool:
            raise AssertionError("torch is imported only where NVML sees a GPU")

        monkeypatch.setattr(capabilities, "torch_sees_cuda", probed)
        found = detect(
            _config(tmp_path, **folders),
            nvml=fake_nvml(driver_loaded=False),
            has_module=modules("vllm", "torch", "xllamacpp", "diffusers", "transformers"),
        )
        assert found.vllm_command == () and not found.vllm and found.llm_models == {}
        assert not found.cuda

    def test_a_configured_vllm_command_is_used_without_a_gpu(self, tmp_path, folders):
        found = detect(
            _config(
                tmp_path, vllm_command="/opt/vllm/bin/python -m vllm.entrypoints.openai.api_server", **folders
            ),
            nvml=fake_nvml(driver_loaded=False),
        )
        assert found.vllm_command == ("/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server")
        assert sorted(found.llm_models) == ["mistralai/Mistral-7B-Instruct-v0.2", "opt-125m"]


class TestWithAGpu:
    def test_nvml_readings_go_into_the_heartbeat(self, tmp_path):
        body = heartbeat_body(cached_models=["m"], slots=1, home=str(tmp_path), nvml=fake_nvml(gpus=2))
        assert len(body["gpus"]) == 2
        assert body["gpu_status"]["gpu_name"] == "NVIDIA H100 80GB HBM3"
        assert (
            body["gpu_status"]["gpu_vram_mib"] == 80 * 1024 and body["gpu_status"]["cuda_version"] == "12.8"
        )
        assert body["gpu_status"]["power_w"] == 312 and body["gpu_status"]["driver_version"] == "570.86.15"

    def test_vllm_installed_serves_the_model_folders(self, tmp_path, folders, monkeypatch):
        monkeypatch.setattr(capabilities, "torch_sees_cuda", lambda: True)  # torch here is a CPU build
        found = detect(
            _config(tmp_path, **folders),
            nvml=fake_nvml(),
            has_module=modules("vllm", "torch", "xllamacpp", "diffusers", "transformers"),
        )
        assert found.vllm_command == VLLM_MODULE_COMMAND and found.cuda
        assert found.llm_models["mistralai/Mistral-7B-Instruct-v0.2"].kind == "chat"
        assert found.llm_models["opt-125m"].kind == "completion"
        assert (
            found.image_models["stabilityai/stable-diffusion-xl-base-1.0"].kind == "StableDiffusionXLPipeline"
        )
        assert sorted(found.image_models) == ["sd-1.5", "stabilityai/stable-diffusion-xl-base-1.0"]

    def test_without_vllm_the_folders_are_not_offered(self, tmp_path, folders):
        found = detect(_config(tmp_path, **folders), nvml=fake_nvml(), has_module=modules("xllamacpp"))
        assert not found.vllm and found.llm_names() == []
        assert found.image_models == {}  # no diffusers, no Stable Diffusion

    def test_the_pypi_xllamacpp_wheel_has_no_gpu_backend(self, tmp_path):
        found = detect(_config(tmp_path), nvml=fake_nvml(), has_module=modules("xllamacpp"))
        assert found.gpus and found.llama_gpu == []  # the CPU-only wheel, truthfully, even beside a GPU

    def test_sd_weights_need_transformers(self, tmp_path, folders):
        found = detect(
            _config(tmp_path, **folders), nvml=fake_nvml(), has_module=modules("diffusers", "torch")
        )
        assert found.image_models == {}


class TestChoosing:
    caps = Capabilities(
        vllm_command=("vllm",),
        llm_models={"org/big": Weights("org/big", Path("/m/org/big"), "chat")},
        image_models={"sd": Weights("sd", Path("/i/sd"), "StableDiffusionPipeline")},
        gguf_models=("gemma3-270m",),
        tiny_image=True,
    )

    def test_each_model_goes_to_its_engine(self):
        assert self.caps.choose_llm("org/big").engine == "vllm"
        assert self.caps.choose_llm("google/gemma-3-270m").model == "gemma3-270m"
        assert self.caps.choose_llm(None).engine == "llama"
        assert self.caps.choose_image("sd").engine == "diffusers"
        assert self.caps.choose_image(None).engine == "tiny"

    def test_a_model_it_cannot_serve_is_refused_with_what_it_serves(self):
        with pytest.raises(
            JobFailed, match=r"'llama-70b' is not available on this provider \(it serves: org/big"
        ):
            self.caps.choose_llm("llama-70b")
        with pytest.raises(JobFailed, match="Image model 'sdxl' is not available"):
            self.caps.choose_image("sdxl")

    def test_the_demo_answers_any_name_with_the_small_models(self):
        assert self.caps.choose_llm("TinyLlama/TinyLlama-1.1B-Chat-v1.0", any_model=True).engine == "llama"
        assert self.caps.choose_image("stabilityai/sdxl", any_model=True).engine == "tiny"


def test_the_heartbeat_reports_what_the_capabilities_serve(tmp_path, folders):
    config = _config(tmp_path, vllm_command=["vllm-stand-in"], **folders)
    found = detect(config, has_module=modules("diffusers", "torch", "transformers", "xllamacpp"))
    daemon = Daemon(config, capabilities=found)
    assert set(daemon.cached_models()) == {
        "mistralai/Mistral-7B-Instruct-v0.2",
        "opt-125m",
        "sd-1.5",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "dcp-tiny-diffusion",
    }
    assert daemon.describe()["capabilities"]["vllm"] == "vllm-stand-in"
