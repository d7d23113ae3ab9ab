"""bitbucket-pipelines.yml run on the local Docker engine, step by step, as Bitbucket runs it.

python -m deploy.pipeline [--pipeline default] [--manual] [--variable NAME]... (make pipeline)

`file` reads the pipeline file and refuses what this runner does not know; `step` runs one step in containers;
`__main__` runs a pipeline's steps in order and carries their artifacts. It stands alone like deploy-docker.py:
it imports nothing from app, and reads bitbucket-pipelines.yml and nothing else.
"""
