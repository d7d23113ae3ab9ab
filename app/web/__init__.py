"""Flask: the routes (api/), tokens and the login limit, request schemas, errors, metrics, logging.

May import Flask and its extensions, app/model/recommender.py, app/experiment/arms.py (which model answers),
app/store/ and app/config.py.
"""
