"""`python -m dnnbench` → dnnbench.frontends.cli.main."""

import sys

from dnnbench.frontends.cli import main

sys.exit(main())
