"""The ``facelab`` command line: a thin shell over the Python API (nothing outside this package imports it).

Layout:

- :mod:`.common`: what every command shares, defined once: the options (``DetectorOpt``,
  ``RotateOpt``, ``JsonOpt``, ``LimitOpt``...) and their defaults, errors and exit codes
  (``guard``, ``fail``), output (``print_json``, ``new_table``/``print_table``, ``progress_bar``,
  ``run_images`` for commands over many images);
- :mod:`.data`: options of the commands reading labelled data (manifests, datasets, label regexes);
- one module per command group, each with ``register(app)``: :mod:`.images` (detect, landmarks,
  embed, verify, analyze, models), :mod:`.gallery` (enroll, enroll-dir, identify, gallery ...),
  :mod:`.dataset` (dataset build, augment), :mod:`.train` (train ..., predict), :mod:`.evaluate`,
  :mod:`.batch` (batch ..., cluster, cluster-enroll), :mod:`.stream`, :mod:`.serve` (serve, keys),
  :mod:`.compat`;
- :mod:`.app`: the root ``app``, ``COMMAND_MODULES`` (add a new module there) and ``main()``.
"""

from .app import COMMAND_MODULES, app, main

__all__ = ["COMMAND_MODULES", "app", "main"]
