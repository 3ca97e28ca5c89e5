"""``python -m catalog migrate`` applies this service's migrations to its database."""

from catalog.config import MIGRATIONS_DIR, CatalogSettings
from tandem.migrations import migrate_command

if __name__ == "__main__":
    migrate_command(MIGRATIONS_DIR, CatalogSettings())
