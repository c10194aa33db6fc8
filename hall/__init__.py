"""The auction hall: Tornado HTTP API, WebSocket rooms and pages.

Never imports eventlet (ARCHITECTURE.md decision 7): the hall runs on asyncio.
"""
