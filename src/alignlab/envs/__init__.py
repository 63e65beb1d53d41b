"""Problems with hidden intended objectives: RL environments and small decision games.

Importing this package imports every environment module, so each registers itself with
alignlab's registry and with Gymnasium (ids 'alignlab/<name>').
"""

import importlib as _importlib
import pkgutil as _pkgutil

for _info in _pkgutil.walk_packages(__path__, prefix=__name__ + "."):
    _importlib.import_module(_info.name)
