"""Conversations, shared by every stage that reads, trains on or holds them: instruction formats
(Alpaca, Dolly, OASST1, ShareGPT, messages) read as `messages` (formats.py), the chat template and
its rendering (template.py), answer-only training examples and batches (encoding.py), one streamed
reply through the decode engine (session.py), and the terminal chat (terminal.py).

Import from the module you need: this package imports nothing itself, so reading a chat template
does not load torch."""
