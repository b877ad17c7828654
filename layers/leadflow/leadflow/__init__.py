"""leadflow: serverless marketing automation that runs in your own AWS account.

Sub-packages:
- ``domain``: pure rules (normalization, merging, form validation, events). No boto3, no env, no clock reads.
- ``config``: the workspace (forms, referrers): dataclasses validated by pydantic.
- ``services``: use cases wiring the domain to ports.
- ``adapters``: the only code that imports boto3 or opens a socket.
- ``transport``: turning Lambda events into domain input and results into responses.
- ``dev``: the local stack and CLI (never shipped in the Lambda layer).
"""

__version__ = "0.1.0"
