"""``python -m dashboard migrate``: the dashboard keeps no database, so there is nothing to do.

``tandem dev`` runs ``migrate`` for every service; the dashboard answers it with success.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:] != ["migrate"]:
        sys.exit("usage: python -m dashboard migrate")
    # Nothing to do, and nothing to say: ``tandem dev`` runs this for every service.
