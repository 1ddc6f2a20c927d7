"""Other systems the controller talks to over HTTP: the province's source system and webhook receivers.

Both send through the durable outbox of the store (`outbox.py` here delivers it); `http.py` is the one
HTTP client and translates its failures into `RemoteError`s; `mapping.py` reads the field-mapping profiles
(data files in `profiles/`); `signing.py` signs webhook bodies. What a pushed bulletin or schedule becomes
in the commune's queue is decided above, in `app.province`, through the `Inbox` port.
"""
