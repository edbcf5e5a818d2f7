"""Offline emulator of Anthropic's Messages API (see docs/emulator.md)."""
