"""The uwsgi workers' priority below the mule's (deploy/uwsgi.ini).

Under a load that saturates the CPUs, workers at the default priority left the mule that copies their journals
into the database too small a share: the copy fell seconds behind (p99 14.7 s), and a score for a fresh
recommendation waits for that copy. The workers' throughput stayed the same (benchmarks/README.md, "The log at
scale"). A niceness ranks a process only among those of its scheduling group (its container's cgroup, or its
session under autogroup): here, uwsgi's.
"""

from __future__ import annotations

import os

WORKER_NICENESS = 10


def yield_to_the_mule() -> None:
    """In a uwsgi worker, lower its priority: not in the mule, which imports the app too, nor in
    deploy/preflight.py, which `uwsgi --pyrun` runs as worker 1 before the stack starts."""
    try:
        import uwsgi
    except ImportError:  # the development server, or a test
        return
    if uwsgi.worker_id() > 0 and "pyrun" not in uwsgi.opt:
        os.nice(WORKER_NICENESS)
