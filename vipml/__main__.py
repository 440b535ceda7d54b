"""``python -m vipml``: the command line."""

from vipml.cli import app

if __name__ == "__main__":
    app()
