"""Tollbooth: a credit ledger for AI products, in layers (arrows point down):

- ``handlers``, ``api``: entry points (the non-HTTP Lambda handlers; HTTP only);
- ``bootstrap``: the one composition root, which adapter serves which port;
- ``adapters``: DynamoDB, EventBridge, SQS, and the in-memory twin of the store;
- ``app``: the use cases and their ports;
- ``contracts``: the wire shapes (HTTP bodies, usage messages);
- ``domain``: money, catalog, pricing, ledger rules, events; pure.

``make lint`` keeps it so (import-linter; see pyproject.toml).
"""
