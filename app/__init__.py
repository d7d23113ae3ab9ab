"""Movie recommendations for new users, from MovieLens ml-100k."""
