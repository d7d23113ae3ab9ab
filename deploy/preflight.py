"""Run by deploy/run-stack, in uwsgi's own Python, before the stack serves: builds the app once, and readies
the database (tables made, what a crash left in the journal copied in).

uwsgi's workers load the app themselves (lazy-apps, for chain reloads) and never ask the database anything
to start, so that they come and go through an outage. This is where a stack's start checks the database,
and where a configuration mistake stops it with main.py's one line ("error: ...", exit status 2).
"""

import main
from app import prepare_database

main.or_exit(lambda: prepare_database(main.app))
