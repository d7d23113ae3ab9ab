"""The Python API's public name (SPEC 4): from app.recommender import Recommender; see app/model/recommender.py."""

from app.model.recommender import ModelFileError, Recommender

__all__ = ["ModelFileError", "Recommender"]
