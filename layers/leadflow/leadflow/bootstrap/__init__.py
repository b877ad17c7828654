"""The composition root: every service and adapter a function uses is built here, and only here.

Each builder reads its function's settings (``leadflow.settings``: checked on first use, a
missing variable fails with its name) and is cached (``functools.cache``), so a warm Lambda
container builds each thing once. Nothing is built at import time: no boto3 client exists
before a handler first asks for it. The builders are named after what they return
(``nurture_service``, ``handoff_queue``, ...); handlers, the dev stack and the command line
take what they need from here instead of importing adapters.

``*_for(...)`` builders take their tables as arguments instead (the command line names them).

The builders live in one module per area: ``intake`` (capture, intake, redrive, outbox),
``scoring`` (scoring, tracking, SES feedback), ``nurture``, ``admin_api``, ``handoff`` (with CRM
feedback), ``gdpr``, ``reporting``, ``pages`` (the console, 404 and landing pages) and ``clock``.
A handler, the dev stack and the command line import a builder from the module of its area
(``from leadflow.bootstrap.intake import capture_service``): this package imports none of them,
so a function loads only its own area's builders and what they import (every area together cost
form capture's cold start ~31 million instructions, docs/benchmarks.md section 2).
"""
