import sys

from p2pim.cli import main

sys.exit(main())
