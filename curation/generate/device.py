"""Choosing the device and dtype for generation from the config and what the machine offers."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from curation.core.errors import InputError


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    dtype: str
    warnings: tuple[str, ...] = ()


def choose_device(device: str, dtype: str, *, cuda_devices: int, mps_available: bool = False) -> DeviceChoice:
    """auto → cuda + bfloat16 when a GPU is there, else cpu + float32 (with a warning)."""
    warnings: list[str] = []
    if device == "auto":
        device = "cuda" if cuda_devices else "mps" if mps_available else "cpu"
    if device.startswith("cuda") and not cuda_devices:
        raise InputError(f"generator.device = {device!r}: no CUDA device is available (use 'auto' or 'cpu')")
    if device.startswith("cuda:") and int(device.split(":")[1]) >= cuda_devices:
        raise InputError(f"generator.device = {device!r}: this machine has {cuda_devices} CUDA device(s)")
    if device == "mps" and not mps_available:
        raise InputError("generator.device = 'mps': no MPS device is available (use 'auto' or 'cpu')")
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float16" if device == "mps" else "float32"
    if device == "cpu":
        warnings.append("generating on the CPU: fine for tiny models, far too slow for real ones")
        if dtype != "float32":
            warnings.append(f"generator.dtype = {dtype!r} on the CPU is slow and lossy; float32 is usual there")
    return DeviceChoice(device, dtype, tuple(warnings))


def machine_devices() -> tuple[int, bool]:
    """(CUDA devices, MPS available) as torch sees them once it is imported; before that (`widespec status` must
    not import torch) the NVIDIA driver's GPUs, narrowed by CUDA_VISIBLE_DEVICES, and Apple silicon."""
    torch = sys.modules.get("torch")
    if torch is not None:
        mps = getattr(torch.backends, "mps", None)
        return torch.cuda.device_count(), bool(mps and mps.is_available())
    gpus = len(list(Path("/proc/driver/nvidia/gpus").glob("*")))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        listed = [v.strip() for v in visible.split(",") if v.strip()]
        gpus = min(gpus, len(listed)) if not any(v.startswith("-") for v in listed) else 0
    return gpus, platform.system() == "Darwin" and platform.machine() == "arm64"


def torch_dtype(name: str) -> object:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
