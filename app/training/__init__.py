"""Offline work: train, evaluate against the baselines, read recorded scores back, report.

May import app/model/, app/store/ and app/config.py (for ML100K_DIR); never app/web/.
"""
