"""Dataset generators and loaders."""

from sparsestat.datasets._images import load_image_patches, whiten_olshausen_field

__all__ = ["load_image_patches", "whiten_olshausen_field"]
