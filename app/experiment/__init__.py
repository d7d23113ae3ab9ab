"""Live experiments: a candidate model takes a share of traffic beside the served one (the control).

arms.py is what a worker follows, publication.py brings the database's word to each replica's disk, and
python -m app.experiment is the operator's command. May import app/model/, app/store/ and app/config.py;
never app/web/.
"""
