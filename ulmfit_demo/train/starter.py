# Temporary: the starter's finding and loading moved to `ulmfit_demo.models.starter` (models must not reach up
# into train); importers are moved over in the same change and this file then goes.
from ulmfit_demo.models.starter import *  # noqa: F401,F403
from ulmfit_demo.models.starter import FILES, MANIFEST, DEFAULT_DIR, REBUILD, SOURCES, StarterError  # noqa: F401
