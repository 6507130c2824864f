"""Tollbooth: a credit ledger for AI products.

The package is split by depth: ``money``, ``catalog``, ``pricing`` and ``ledger``
are plain Python with no AWS calls; ``repository`` is the only module that talks
to DynamoDB; ``operations`` orchestrates the two; ``api`` maps HTTP onto it.
"""
