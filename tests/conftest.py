import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # tests/strategies.py, shared by several test files

# Property tests run a fixed number of examples, with no per-example deadline (CI machines vary in speed).
settings.register_profile(
    "cnnlab",
    max_examples=int(os.environ.get("CNNLAB_HYPOTHESIS_EXAMPLES", 80)),
    deadline=None,
    derandomize=True,
)
settings.load_profile("cnnlab")
