"""python -m app.data: the command's public name (README, SPEC 4.1); the work is in app/model/data.py."""

from app.model.data import main

if __name__ == "__main__":
    raise SystemExit(main())
