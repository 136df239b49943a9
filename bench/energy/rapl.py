"""Linux powercap RAPL: the cumulative energy of the CPU packages, read from sysfs.

Each CPU package is a powercap zone ``/sys/class/powercap/intel-rapl:N`` whose ``name`` is
``package-N``; AMD processors appear under the same ``intel-rapl`` names on recent kernels. A zone
holds ``energy_uj`` (microjoules since an arbitrary origin) and ``max_energy_range_uj`` (where the
counter wraps back to 0, every few tens of minutes at a package's power). Sub-zones
(``intel-rapl:N:M``: core, uncore, dram) are parts of their package, ``psys`` is the whole platform
and ``intel-rapl-mmio:N`` repeats a package through another interface, so none of them is added.

A package's energy covers every core and every process on it, not only the measured call. Since
Linux 5.10 (CVE-2020-8694, the PLATYPUS attack) ``energy_uj`` is readable by root alone.
"""

from __future__ import annotations

import re
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")


def read_uj(path: Path) -> int:
    return int(path.read_text().strip())


class RaplCounter:
    """Joules of the given package zones since the counter was opened, wrap-around included.

    Each read adds every zone's increase since the previous read; an increase that is negative is
    a wrap, so the zone's range is added back. Two wraps between reads cannot be told from one,
    which needs reads further apart than the wrap period (tens of minutes): never in a window.
    """

    source = "rapl"

    def __init__(self, zones: list[Path]):
        if not zones:
            raise ValueError("RaplCounter needs at least one package zone")
        self.zones = zones
        self.names = [(zone / "name").read_text().strip() for zone in zones]
        self.ranges_uj = [read_uj(zone / "max_energy_range_uj") for zone in zones]
        self.last_uj = [read_uj(zone / "energy_uj") for zone in zones]
        self.total_uj = 0

    @property
    def scope(self) -> str:
        return f"CPU package energy ({', '.join(self.names)}): every core and process on them"

    def read_j(self) -> float:
        for i, zone in enumerate(self.zones):
            now = read_uj(zone / "energy_uj")
            increase = now - self.last_uj[i]
            if increase < 0:
                increase += self.ranges_uj[i]
            self.total_uj += increase
            self.last_uj[i] = now
        return self.total_uj / 1e6


def package_zones(root: Path = POWERCAP) -> list[Path]:
    """The top-level RAPL zones named ``package-*`` under ``root``, in index order."""
    zones = [path for path in root.iterdir() if PACKAGE_ZONE.fullmatch(path.name)]
    zones = [zone for zone in zones if (zone / "name").is_file()
             and (zone / "name").read_text().strip().startswith("package")]
    return sorted(zones, key=lambda zone: int(zone.name.split(":")[1]))


def open_rapl(root: Path = POWERCAP) -> tuple[RaplCounter | None, str | None]:
    """(counter, None) when every package zone is readable, else (None, why not) in one line."""
    if not root.is_dir():
        return None, f"{root} does not exist: no powercap RAPL driver (a VM or container usually has none)"
    try:
        zones = package_zones(root)
    except OSError as error:
        return None, f"cannot list RAPL zones under {root}: {error}"
    if not zones:
        return None, f"no RAPL package zone (intel-rapl:N named package-N) under {root}"
    try:
        return RaplCounter(zones), None
    except PermissionError:
        return None, (f"{zones[0] / 'energy_uj'} is not readable by this user (root only since Linux 5.10, "
                      "CVE-2020-8694)")
    except (OSError, ValueError) as error:
        return None, f"cannot read the RAPL counters under {root}: {error}"
