"""Ports: what the services need from the outside world (Protocols, with the types they exchange).
Adapters implement them; services and adapters import them, never each other.

One module per area: ``clock``, ``leads`` (capture, intake, activities, audience), ``scoring``,
``nurture``, ``messaging`` (email sending and SES feedback), ``handoff``, ``crm_feedback``,
``gdpr``, ``reporting``, ``outbox``, ``console`` and ``secrets``. A port is imported from the
module of its area (``from leadflow.ports.leads import LeadStore``): this package imports none
of them, so a function loads only the ports it uses (form capture: ``clock`` and ``leads``; all
thirteen cost its cold start ~78 million instructions, docs/benchmarks.md section 2). The area
modules import only from the domain (the layers contract: ports sit below services and adapters).
"""
