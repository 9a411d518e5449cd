"""The SPDCI Social Registry API of the registry (``/spdci/v1.0.0``).

Protocol side: ``spec`` (the OpenAPI file and validation against it), ``envelope`` (parsing,
tolerated defects, header checks), ``signature`` and ``keys`` (Ed25519 message signatures, the
registry's own key), ``senders`` (who may call), ``inbound`` (the checks every request passes),
``service`` (search, subscribe, unsubscribe, txn/status), ``transactions`` (message ids and what
``txn/status`` reports), ``delivery`` and ``worker`` (signed callbacks with retries), ``api``
(the routes), ``models`` (tables). Data side: ``query``, ``records``, ``events``,
``notifications``.
"""
