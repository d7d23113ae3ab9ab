"""Live experiments: a candidate model takes a share of traffic beside the served one (the control).

The analysis (analysis.py: the metric, the always-valid interval, the verdict; sample_ratio.py; summary.py)
imports numpy and scipy only. The service side may import app/model/, app/store/ and app/config.py, never
app/web/: arms.py is what a worker follows, publication.py brings the database's record to each replica's
disk, units.py reads the running sums, report.py says the status and keeps the guardrail, and `python -m
app.experiment` (__main__.py) is the operator's command.
"""
