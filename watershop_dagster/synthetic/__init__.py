"""Synthetic shop footage with ground truth, for the demo, tests and benchmarks.

`gallery` loads face photos (one folder per person, or a built-in default from photos that
installed packages ship); `footage` scripts visits, renders H.264 MP4 files in the plain or
Frigate layout and writes the ground truth beside them.
"""
