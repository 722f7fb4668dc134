"""``python -m bot`` is the ``img2img-bot`` command."""

import sys

from bot.cli import main

sys.exit(main())
