"""``python -m adapter`` is the ``loket-adapter`` command."""

from adapter.cli import main

main(prog_name="loket-adapter")
