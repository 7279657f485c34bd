"""A history of runs across commits (store.py) and its change points (changes.py): docs/history.md."""
