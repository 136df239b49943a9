"""What the machine is: versions, device, clocks, and which code runs (``bench.identity``). Recorded in every
results file's header."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch

from bench import energy, precision
from bench.energy.nvml import find_handle
from bench.identity import code_identity


def free_memory_bytes(device: str) -> int | None:
    """Memory a cell may still allocate on ``device``; None when it cannot be told."""
    kind = torch.device(device).type
    if kind == "cuda":
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def nvml_readings(device: str) -> dict | None:
    """Clocks, power and temperature of the GPU through NVML; None without a GPU or NVML."""
    if torch.device(device).type != "cuda":
        return None
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        # NVML numbers every GPU of the machine; torch only the visible ones (CUDA_VISIBLE_DEVICES): match by bus id
        handle = find_handle(pynvml, torch.cuda.get_device_properties(torch.device(device)))
        readings = {
            "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "mem_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "max_sm_clock_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "power_w": pynvml.nvmlDeviceGetPowerUsage(handle) / 1000,
            "power_limit_w": pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
            "temperature_c": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
            "driver": pynvml.nvmlSystemGetDriverVersion(),
        }
        pynvml.nvmlShutdown()
        return readings
    except (pynvml.NVMLError, LookupError) as error:
        return {"error": str(error)}


def triton_cache_dir() -> str:
    """Where Triton keeps compiled kernels and, with fla's ``FLA_CACHE_RESULTS`` (on by default),
    autotuning results: ``TRITON_CACHE_DIR``, else ``$TRITON_HOME/.triton/cache`` (home by default),
    as Triton's ``knobs.cache.dir`` resolves it. Keeping it between jobs skips fla's autotuning."""
    chosen = os.environ.get("TRITON_CACHE_DIR", "").strip()
    if chosen:
        return chosen
    home = os.environ.get("TRITON_HOME", "").strip() or os.path.expanduser("~/")
    return os.path.join(home, ".triton", "cache")


def environment(device: str) -> dict:
    """Everything a reader needs to trust or reproduce a results file."""
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "host": socket.gethostname(),
        "device": device,
        "device_name": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "fla": package_version("flash-linear-attention"),
        "fla_core": package_version("fla-core"),
        "triton": package_version("triton"),
        "numpy": package_version("numpy"),
        "triton_interpret": os.environ.get("TRITON_INTERPRET") == "1",
        **code_identity(),  # mixbench_version, git_commit, git_dirty, source_sha256
        "triton_cache_dir": triton_cache_dir(),
        "nvml": nvml_readings(device),
        **precision.fields(device),
        "energy": energy.header(device),
    }
