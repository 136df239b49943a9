"""Energy per call: joules and mean watts of a cell's call, beside its latency and memory.

    bench.modes.probe ── after the timed calls ──► meter.row_fields(call, device, median_ms)
        meter.open_meter(device): cuda → nvml.open_nvml (NVML total energy, the GPU board)
                                  cpu  → rapl.open_rapl (powercap RAPL, the CPU packages)
        window.measure: repeated calls over >= 10 counter update periods, ends on counter changes

Where no counter can be read, rows carry nulls and the results header's ``energy`` entry
(``meter.header``) says why, once.
"""

from bench.energy.meter import FIELDS, header, open_meter, row_fields, switch_off

__all__ = ["FIELDS", "header", "open_meter", "row_fields", "switch_off"]
