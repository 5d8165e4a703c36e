"""GPU telemetry from NVML, one entry per GPU; without a GPU or NVML it says so (an empty list)."""

from __future__ import annotations

import logging
import platform
import shutil
import socket
from typing import Any

from dcp.agent import DAEMON_VERSION

log = logging.getLogger("dcp.agent.telemetry")


def read_gpus(nvml: Any = None) -> list[dict[str, Any]]:
    """Every NVIDIA GPU's name, memory, utilisation, temperature, power and driver/CUDA versions, read
    through ``nvml`` (the pynvml module of nvidia-ml-py unless given)."""
    pynvml = nvml if nvml is not None else _nvml_module()
    if pynvml is None:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []  # no driver or no GPU: nothing is invented
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                {
                    "gpu_name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "gpu_vram_mib": int(memory.total) // (1024 * 1024),
                    "vram_used_mib": int(memory.used) // (1024 * 1024),
                    "gpu_util_pct": int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                    "temp_c": int(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
                    "power_w": int(pynvml.nvmlDeviceGetPowerUsage(handle)) // 1000,
                    "driver_version": driver,
                    "cuda_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
                }
            )
        return gpus
    except pynvml.NVMLError as exc:
        log.warning("NVML failed while reading GPUs: %s", exc)
        return []
    finally:
        pynvml.nvmlShutdown()


def _nvml_module() -> Any:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def heartbeat_body(*, cached_models: list[str], slots: int, home: str, nvml: Any = None) -> dict[str, Any]:
    gpus = read_gpus(nvml)
    status: dict[str, Any] = {
        "daemon_version": DAEMON_VERSION,
        "python_version": platform.python_version(),
        "os_info": f"{platform.system()} {platform.release()}",
    }
    if gpus:
        status.update(gpus[0])
    return {
        "gpu_status": status,
        "gpus": gpus,
        "provider_hostname": socket.gethostname()[:200],
        "cached_models": cached_models,
        "free_disk_mib": shutil.disk_usage(home).free // (1024 * 1024),
        "slots": slots,
    }
