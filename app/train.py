"""python -m app.train: the command's public name (README, SPEC 4.1); the work is in app/training/train.py."""

from app.training.train import main

if __name__ == "__main__":
    raise SystemExit(main())
