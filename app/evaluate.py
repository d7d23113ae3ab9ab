"""python -m app.evaluate: the command's public name (README, SPEC 4.1); the work is in app/training/evaluate.py."""

from app.training.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
