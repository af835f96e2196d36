"""`python -m csoftmax`: the same as the `csoftmax` command."""

from .cli import main

raise SystemExit(main())
