"""``python -m simnet`` / the ``simnet`` command."""

from simnet.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
