import sys

from lyra.cli import main

sys.exit(main())
