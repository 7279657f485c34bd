"""`python -m dnnbench` → dnnbench.cli.main."""

import sys

from dnnbench.cli import main

sys.exit(main())
