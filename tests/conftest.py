import sys
from pathlib import Path

# The harness's pytest glue lives beside the tests; make it importable as a plugin.
sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["vlan_fixtures", "tests.tui_cast"]  # namespaces; UIs (cast, pair)
