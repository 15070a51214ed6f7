"""Tests of the Discord adapter over real sockets (fake Discord, fake xAI, real discord.py and engine)."""
