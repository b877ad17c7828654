"""leadflow: serverless marketing automation that runs in your own AWS account.

Sub-packages:
- ``domain``: pure rules (normalization, merging, form validation, events). No boto3, no env, no clock reads.
- ``config``: the workspace (forms, referrers): dataclasses validated by pydantic.
- ``services``: use cases wiring the domain to ports.
- ``adapters``: the only code that imports boto3 or opens a socket.
- ``transport``: turning Lambda events into domain input and results into responses.
- ``ports``: the interfaces services use and adapters implement, with the types they exchange.
- ``settings``: each function's environment, checked on first use.
- ``bootstrap``: the one composition root; every service and adapter is built there.
- ``dev``: the local stack and CLI (never shipped in the Lambda layer).
"""

__version__ = "0.1.0"
