"""The application layer: one service module per noun, the composition root, one serialiser per record.

`cli` and `web` call these; nothing here renders text for people.
"""
