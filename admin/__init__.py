"""The coop's admin in a browser: its own aiohttp application, mounted at ``/admin``."""
