"""Phase-local peak memory of the current process (Linux).

What is measured: the resident set size (RSS) of the process. Before a phase
the kernel's peak-RSS counter (VmHWM) is reset by writing "5" to
/proc/self/clear_refs (Linux >= 4.0); after the phase the peak is read back.
The figure reported is `peak - rss_at_phase_start`: the extra memory the phase
touched (activations, gradients, optimizer slots, traced graphs, TF's
allocator caches), in MiB.

Why this is honest only in a fresh process: freed memory stays in the
allocator (glibc, TF's CPU allocator) and is reused by the next phase without
growing RSS. The study therefore runs every cell in its own worker process
and measures the phases smallest first (batch-1 inference, then a training
step); later phases of the same process are not measured.

Where /proc/self/clear_refs cannot be written, the fallback is the process's
lifetime peak (`resource.getrusage(...).ru_maxrss`), which over-reports
later phases: the method used is recorded with every measurement.
"""

import os
import resource


def _status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib():
    """Current RSS in MiB (ru_maxrss as an upper bound where /proc is absent)."""
    kib = _status_kib("VmRSS")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager measuring the peak RSS growth of the enclosed phase.

    Example::

        with PeakMemory() as mem:
            run_phase()
        mem.delta_mib, mem.peak_mib, mem.method

    Attributes (after exit):
        start_mib: RSS at entry.
        peak_mib: peak RSS during the phase.
        delta_mib: peak_mib - start_mib (>= 0).
        method: "vmhwm-reset" or "ru_maxrss" (lifetime peak; upper bound).
    """

    def __init__(self):
        self.start_mib = self.peak_mib = self.delta_mib = None
        self.method = None

    def __enter__(self):
        self.method = "vmhwm-reset" if _reset_peak() else "ru_maxrss"
        self.start_mib = rss_mib()
        return self

    def __exit__(self, *exc):
        if self.method == "vmhwm-reset":
            kib = _status_kib("VmHWM")
        else:
            kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_mib = max(kib / 1024.0, self.start_mib)
        self.delta_mib = self.peak_mib - self.start_mib
        return False


def load_average():
    """1-minute load average (None where unavailable): contention context."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
