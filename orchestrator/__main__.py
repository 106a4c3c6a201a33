import sys

from orchestrator.sweep import main

sys.exit(main())
