"""Supermarket behaviour per camera-day: people tracked in the recordings, identities from faces,
zone analytics written to the lake (partition.py), identity attachment (identities.py)."""
