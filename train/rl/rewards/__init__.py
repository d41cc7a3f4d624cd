"""Rewards for Flow-GRPO: a protocol (``base.py``) and its implementations."""
