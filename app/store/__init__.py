"""The SQL log of recommendations and scores (SQLAlchemy), journal first, and the signed recommendation ids.

May import SQLAlchemy; nothing of app/web/ or app/model/.
"""
