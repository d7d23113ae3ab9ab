"""Experiments: the analysis of a candidate model against the served one on live traffic.

analysis.py gives the primary metric per arm, the difference with an always-valid confidence
sequence and the verdict; sample_ratio.py checks the arms' sizes against the configured share;
summary.py puts both into the JSON that `status --json` shows. Imports numpy and scipy only:
nothing of app.web, app.store or app.config, no Flask, no SQL, no environment. The service feeds it
per-arm sums (analysis.Arm) that one SQL query can give.
"""
