"""The image's HEALTHCHECK: healthy while the app answers /health with a working model.

A database that is away makes /health answer 503 with "database": "unavailable". That is not this
container's fault: replacing it (Swarm replaces unhealthy tasks, deploy-docker.py rolls back) would not
bring the database back, and a new container could not start without it. So only the model's part counts
here, while /health itself keeps telling clients and monitors the whole truth.
"""

import json
import os
import sys
import urllib.error
import urllib.request

HEALTH_URL = f"http://127.0.0.1:{os.environ['PORT']}/health"


def model_answers() -> bool:
    try:
        with urllib.request.urlopen(HEALTH_URL, timeout=4) as answer:
            report = json.load(answer)
    except urllib.error.HTTPError as error:  # a 503 still says which part is away
        report = json.load(error)
    return isinstance(report, dict) and report.get("model") == "ok"


if __name__ == "__main__":
    try:
        sys.exit(0 if model_answers() else 1)
    except (OSError, ValueError):  # nothing answers, or not the app (nginx's own JSON error has no "model")
        sys.exit(1)
