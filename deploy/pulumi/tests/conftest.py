import sys
from pathlib import Path

# The program's package, as `pulumi up` finds it beside __main__.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
