"""``python -m billingcenter`` is the ``billingcenter`` command."""

from billingcenter.cli import main

raise SystemExit(main())
