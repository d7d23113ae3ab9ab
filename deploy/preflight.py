"""Run by deploy/run-stack, in uwsgi's own Python, before the stack serves: builds the app once.

uwsgi's workers load the app themselves (lazy-apps, for chain reloads), and uwsgi respawns a worker
that cannot start for ever; building it here first makes a configuration mistake stop the stack with
main.py's one line ("error: ...", exit status 2).
"""

import main  # noqa: F401
