"""``python -m incidents migrate`` applies this service's migrations to its database."""

import sys

from incidents.config import MIGRATIONS_DIR, IncidentsSettings
from tandem.migrations import upgrade

if __name__ == "__main__":
    if sys.argv[1:] != ["migrate"]:
        sys.exit("usage: python -m incidents migrate")
    upgrade(MIGRATIONS_DIR, IncidentsSettings().resolved_database_url())
