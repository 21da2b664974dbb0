"""Golden alerts: today's engine output, frozen, that every change to the engine must reproduce.

``python -m tests.golden.runs --write`` regenerates the files (only when a difference is
accepted, with its reason in the commit and in ``ACCEPTED`` of the test).
"""
