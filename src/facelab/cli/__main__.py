"""``python -m facelab.cli ...`` runs the ``facelab`` command."""

from .app import main

if __name__ == "__main__":
    main()
