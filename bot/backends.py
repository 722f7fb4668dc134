"""The backend a bot with no ``[providers]`` uses: a local GPU pipeline, else the AI Horde."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.providers.base import ProviderSettings
from bot.providers.diffusers_local import DiffusersSettings
from bot.providers.horde import HordeSettings

# Device files a GPU driver creates; checked first so that a machine without one never pays
# the seconds ``import torch`` takes just to learn there is no GPU.
GPU_DEVICE_FILES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd")


def local_extra_installed() -> bool:
    """Whether ``pip install 'img2img-bot[local]'`` (diffusers and torch) is present."""
    return all(importlib.util.find_spec(name) is not None for name in ("diffusers", "torch"))


def gpu_present() -> bool:
    """A CUDA/ROCm GPU torch can use, or Apple's MPS."""
    if sys.platform != "darwin" and not any(Path(p).exists() for p in GPU_DEVICE_FILES):
        return False
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(torch.cuda.is_available() or (mps is not None and mps.is_available()))


def automatic_backend(environ: Mapping[str, str]) -> tuple[str, ProviderSettings, str]:
    """``(name, settings, why)`` of the backend to use when none is configured."""
    if local_extra_installed():
        if gpu_present():
            settings = DiffusersSettings(type="diffusers")
            return "local", settings, ("in-process diffusers pipeline: no provider is "
                                       "configured, the local extra is installed and a GPU "
                                       "is present")
        reason = "the local extra is installed but no GPU was found"
    else:
        reason = "the local extra (diffusers) is not installed"
    horde = HordeSettings(type="horde")
    horde.resolve_secrets("horde", environ)  # HORDE_API_KEY, when the operator has one
    key = "your HORDE_API_KEY" if horde.key() else "the anonymous key, lowest queue priority"
    return "horde", horde, (f"AI Horde with {key}: no provider is configured and {reason}")
