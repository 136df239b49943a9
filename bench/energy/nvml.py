"""NVML's total energy counter of one GPU: ``nvmlDeviceGetTotalEnergyConsumption``, in millijoules
since the driver was loaded (Volta and newer), for the whole board: every process on the GPU counts.

The GPU that torch calls ``cuda:i`` is the i-th one CUDA enumerates *after* ``CUDA_VISIBLE_DEVICES``,
while NVML numbers every GPU of the machine in its own order, so NVML's index i can be another
GPU. The handle is therefore found by the device's PCI bus id (which both sides agree on), and by
its UUID when torch gives no bus id. A MIG instance shares the board's counter, which NVML then
refuses to read: the reason says so.
"""

from __future__ import annotations


def pci_bus_id(properties) -> str | None:
    """NVML's spelling of the device's PCI address, ``00000000:65:00.0``; None when torch has none."""
    try:
        domain, bus, device = properties.pci_domain_id, properties.pci_bus_id, properties.pci_device_id
    except AttributeError:
        return None
    return f"{domain:08X}:{bus:02X}:{device:02X}.0"


def nvml_uuid(properties) -> str | None:
    """The device's UUID as NVML writes it (``GPU-...``); torch prints it without the prefix."""
    uuid = getattr(properties, "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def find_handle(nvml, properties):
    """NVML's handle of the device torch describes by ``properties``: by PCI bus id, else by UUID."""
    tried = []
    for how, key, lookup in (("PCI bus id", pci_bus_id(properties), nvml.nvmlDeviceGetHandleByPciBusId),
                             ("UUID", nvml_uuid(properties), nvml.nvmlDeviceGetHandleByUUID)):
        if key is None:
            continue
        try:
            return lookup(key)
        except nvml.NVMLError as error:
            tried.append(f"{how} {key}: {error}")
    raise LookupError("NVML knows no GPU with " + ("; ".join(tried) or "this device's PCI bus id or UUID"))


class NvmlCounter:
    """Joules the GPU board has used since the driver was loaded (a 64-bit count: it never wraps)."""

    source = "nvml"

    def __init__(self, nvml, handle, name: str):
        self.nvml, self.handle, self.name = nvml, handle, name

    @property
    def scope(self) -> str:
        return f"GPU board energy ({self.name}): every process on the GPU"

    def read_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3


def open_nvml(properties, nvml=None) -> tuple[NvmlCounter | None, str | None]:
    """(counter, None) for the device ``properties`` describes, else (None, why not) in one line."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return None, "pynvml (package nvidia-ml-py) is not installed"
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        return None, f"NVML did not initialise: {error}"
    try:
        handle = find_handle(nvml, properties)
        if _mig_enabled(nvml, handle):
            return None, (f"{properties.name} is split into MIG instances: the board's energy counter would "
                          "count the other instances' work as this call's")
        counter = NvmlCounter(nvml, handle, properties.name)
        counter.read_j()
    except LookupError as error:
        return None, str(error)
    except nvml.NVMLError as error:
        return None, f"NVML cannot read the total energy of {properties.name}: {error} (needs Volta or newer, " \
                     "and the whole GPU rather than a MIG instance)"
    return counter, None


def _mig_enabled(nvml, handle) -> bool:
    """Whether the board runs MIG instances (the bus id finds the whole board even then)."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except (AttributeError, nvml.NVMLError):  # no MIG on this board, or an NVML without the call
        return False
    return current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1)
