"""Choosing the device and dtype for generation from the config and what the machine offers."""

from __future__ import annotations

from dataclasses import dataclass

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


def torch_dtype(name: str) -> object:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
