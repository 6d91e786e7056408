import sys

from pytest_i2i.cli import main

sys.exit(main())
