"""Test-support programs (not part of Heron; nothing under ``src/`` may import them)."""
