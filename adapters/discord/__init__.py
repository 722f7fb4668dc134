"""Discord adapter (discord.py 2): slash command, context menu, progress, result buttons."""
