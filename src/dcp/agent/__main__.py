"""``python -m dcp.agent`` and the downloaded daemon archive start here."""

import sys

from dcp.agent.main import main

sys.exit(main())
