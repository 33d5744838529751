"""Point the ROS 2 wheels' exported CMake files at this interpreter's include folders.

Why: the `ros-*` wheels on PyPI were built in a manylinux container, and the CMake export files they
ship (`<prefix>/share/<pkg>/cmake/*Export.cmake`) name that container's Python and numpy include
folders (`/opt/python/cp311-cp311/...`). Building any package with rosidl (here: vlac_msgs) against
them stops with "includes non-existent path". This script rewrites those folders to the ones of the
interpreter that runs it (`sysconfig` and `numpy.get_include()`).

Idempotent: a file that names no foreign include folder is left untouched, so running it again (every
`make build` does) changes nothing. Only files under the given prefix are touched.

Usage: python tools/repair_ros_wheel_cmake.py [PREFIX]   (default: sys.prefix, the venv)
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

# The build host's folders as they appear in the wheels: .../include/python3.X and .../numpy/(_core/)include.
_PYTHON_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+t?/include/python3\.\d+t?")
_NUMPY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+t?/lib/python3\.\d+t?/site-packages/numpy/(?:_core/)?include")


def repair(prefix: Path) -> list[Path]:
    """Rewrite every export file under ``prefix``/share; returns the files that changed."""
    import numpy

    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = []
    for path in sorted(prefix.glob("share/*/cmake/*Export.cmake")):
        text = path.read_text()
        # Order matters: the numpy pattern contains the python prefix but not the include suffix.
        new = _NUMPY_INCLUDE.sub(numpy_include, text)
        new = _PYTHON_INCLUDE.sub(python_include, new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    prefix = Path(argv[1]) if len(argv) > 1 else Path(sys.prefix)
    if not (prefix / "share").is_dir():
        print(f"repair_ros_wheel_cmake: {prefix}/share does not exist: not a ROS wheel prefix", file=sys.stderr)
        return 2
    changed = repair(prefix)
    print(f"repair_ros_wheel_cmake: {len(changed)} export file(s) pointed at this interpreter's include folders")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
