"""The old home of :class:`~lyra.scene.DynamicScene` (now in :mod:`lyra.scene`, beside :class:`~lyra.scene.Scene`);
these names are re-exported so existing imports keep working."""

from lyra.scene import (
    CAMERAS_NAME,
    DYNAMIC_FORMAT,
    DYNAMIC_VERSION,
    INDEX_NAME,
    DynamicScene,
    LazyGaussians,
    check_scene_output,
    is_dynamic_scene_dir,
    nearest_time_index,
)

__all__ = ["CAMERAS_NAME", "DYNAMIC_FORMAT", "DYNAMIC_VERSION", "INDEX_NAME", "DynamicScene", "LazyGaussians",
           "check_scene_output", "is_dynamic_scene_dir", "nearest_time_index"]
