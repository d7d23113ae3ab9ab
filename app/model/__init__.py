"""The model: the relevance forest, its features and reasons, ml-100k loading, and model files.

recommender.py is the one door for serving. Imports numpy, pandas and scikit-learn only: nothing of app
outside app/model/, no Flask, no SQL, no environment.
"""
