import sys

from gru.cli import main

sys.exit(main())
