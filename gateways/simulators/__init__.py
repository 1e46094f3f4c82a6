"""Simulators of network elements (an SMSC speaking SMPP, a CBC) for drills, demos and tests."""
