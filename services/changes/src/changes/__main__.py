"""``python -m changes migrate`` applies this service's migrations to its database."""

import sys

from changes.config import MIGRATIONS_DIR, ChangesSettings
from tandem.migrations import upgrade

if __name__ == "__main__":
    if sys.argv[1:] != ["migrate"]:
        sys.exit("usage: python -m changes migrate")
    upgrade(MIGRATIONS_DIR, ChangesSettings().resolved_database_url())
