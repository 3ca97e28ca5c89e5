"""``python -m deployments migrate`` applies this service's migrations to its database."""

import sys

from deployments.config import MIGRATIONS_DIR, DeploymentsSettings
from tandem.migrations import upgrade

if __name__ == "__main__":
    if sys.argv[1:] != ["migrate"]:
        sys.exit("usage: python -m deployments migrate")
    upgrade(MIGRATIONS_DIR, DeploymentsSettings().resolved_database_url())
