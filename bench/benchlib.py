"""Helpers shared by the bench/ scripts."""
import os
import subprocess
import sys
import time


def timed(cmd, stdin=None, stdout=subprocess.DEVNULL):
    """Runs cmd as its own process; returns (seconds, peak RSS in MiB of that process alone, from
    wait4). Exits with its stderr when it fails."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    err = p.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return dt, ru.ru_maxrss / 1024
