"""``python -m maskface.cli``: the same as the ``maskface`` command (e.g. for ``-X importtime``)."""

from maskface.cli import main

main()
