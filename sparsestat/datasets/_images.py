"""Natural-image patches for sparse coding (scikit-learn's sample images) and O&F whitening."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from sparsestat.utils._compat import Interval, StrOptions, validate_params

__all__ = ["load_image_patches", "make_dct_dictionary", "whiten_olshausen_field"]


@validate_params(
    {"images": ["array-like"], "f0_frac": [Interval(numbers.Real, 0, None, closed="neither")]},
    prefer_skip_nested_validation=True,
)
def whiten_olshausen_field(images: Any, f0_frac: float = 0.4) -> np.ndarray:
    """Whiten images with the Olshausen-Field filter ``R(f) = |f| exp(-(|f| / f0)^4)``.

    Each image is min-max scaled to [0, 1], z-scored, filtered in the Fourier domain
    (``|f|`` in cycles per image, ``f0 = f0_frac * min(H, W)``) and finally all images are
    rescaled together so that their mean variance is 0.1, as in the authors' data step.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width) or (height, width)
        Gray-level images.
    f0_frac : float, default=0.4
        Cut-off of the low-pass part as a fraction of the image size.

    Returns
    -------
    whitened : ndarray of the same shape as ``images``
        Whitened images (float64).

    Notes
    -----
    The filter flattens the ``1/f`` amplitude spectrum of natural images and removes the
    highest frequencies (Olshausen and Field 1997). The order of the steps follows the
    authors' notebook [authors' code]; the definition of ``f0`` relative to the image size
    is [inferred] from Olshausen and Field's ``f0 = 0.4 N``.

    References
    ----------
    .. [1] B. A. Olshausen, D. J. Field, "Sparse coding with an overcomplete basis set: a
       strategy employed by V1?", Vision Research 37(23), 1997.
    .. [2] D. Rentzeperis, L. Calatroni, L. Perrinet, D. Prandi, "Beyond l1 sparse coding in
       V1", PLOS Computational Biology 19(9), e1011459, 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.datasets import whiten_olshausen_field
    >>> img = np.random.default_rng(0).random((32, 32))
    >>> out = whiten_olshausen_field(img)
    >>> out.shape, round(float(out.var()), 3)
    ((32, 32), 0.1)
    """
    arr = np.asarray(images, dtype=np.float64)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] < 2 or arr.shape[2] < 2:
        raise ValueError(f"images must have shape (n, H, W) or (H, W); got {np.shape(images)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("images contain NaN or infinity")
    _, H, W = arr.shape
    fy = np.fft.fftfreq(H) * H
    fx = np.fft.fftfreq(W) * W
    f = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    filt = f * np.exp(-((f / (f0_frac * min(H, W))) ** 4))
    out = np.empty_like(arr)
    for i, img in enumerate(arr):
        span = img.max() - img.min()
        img = (img - img.min()) / (span if span > 0 else 1.0)
        img = (img - img.mean()) / (img.std() if img.std() > 0 else 1.0)
        out[i] = np.real(np.fft.ifft2(np.fft.fft2(img) * filt))
    mean_var = float(np.mean(out.var(axis=(1, 2))))
    if mean_var > 0:
        out *= np.sqrt(0.1 / mean_var)
    return out[0] if single else out


@validate_params(
    {
        "patch_size": [Interval(numbers.Integral, 2, None, closed="left"), tuple],
        "n_patches": [Interval(numbers.Integral, 1, None, closed="left")],
        "images": [StrOptions({"sample"}), "array-like"],
        "whiten": ["boolean"],
        "normalize": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def load_image_patches(
    patch_size: int | tuple[int, int] = 8,
    n_patches: int = 1000,
    *,
    images: Any = "sample",
    whiten: bool = False,
    normalize: bool = True,
    random_state: Any = None,
) -> np.ndarray:
    """Random gray-level patches of natural images, preprocessed for sparse coding.

    By default the two images shipped with scikit-learn (``load_sample_images``: a Chinese
    temple and a flower; Pillow needed) are converted to gray levels in [0, 1];
    ``n_patches`` random patches are drawn from each, every patch has its own mean removed and
    (with ``normalize``) all patches are divided by their global standard deviation.

    Parameters
    ----------
    patch_size : int or tuple of int, default=8
        Patch height and width (an int gives square patches).
    n_patches : int, default=1000
        Number of patches drawn from each image.
    images : 'sample' or array-like of shape (n_images, height, width), default='sample'
        The images; 'sample' uses scikit-learn's sample images.
    whiten : bool, default=False
        Apply :func:`whiten_olshausen_field` to the images before cutting patches.
    normalize : bool, default=True
        Divide all patches by their global standard deviation.
    random_state : int, RandomState instance or None, default=None
        Seed of the patch positions.

    Returns
    -------
    patches : ndarray of shape (n_images * n_patches, height * width)
        One flattened patch per row (float64), each with zero mean.

    Notes
    -----
    This is the offline stand-in for the van Hateren images of the paper (not shipped).
    Gray levels are the mean over the colour channels divided by 255 [inferred].

    References
    ----------
    .. [1] D. Rentzeperis, L. Calatroni, L. Perrinet, D. Prandi, "Beyond l1 sparse coding in
       V1", PLOS Computational Biology 19(9), e1011459, 2023.

    Examples
    --------
    >>> from sparsestat.datasets import load_image_patches
    >>> X = load_image_patches(8, n_patches=50, random_state=0)
    >>> X.shape
    (100, 64)
    """
    if isinstance(patch_size, tuple):
        if len(patch_size) != 2 or not all(
            isinstance(p, numbers.Integral) and p >= 2 for p in patch_size
        ):
            raise ValueError(f"patch_size must be an int >= 2 or a pair of them; got {patch_size}")
        ph, pw = int(patch_size[0]), int(patch_size[1])
    else:
        ph = pw = int(patch_size)
    if isinstance(images, str):
        from sklearn.datasets import load_sample_images

        imgs = [
            np.asarray(im, dtype=np.float64).mean(axis=2) / 255.0
            for im in load_sample_images().images
        ]
    else:
        arr = np.asarray(images, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(f"images must have shape (n, H, W); got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("images contain NaN or infinity")
        imgs = list(arr)
    if whiten:
        imgs = list(whiten_olshausen_field(np.stack(imgs)))
    rng = check_random_state(random_state)
    out = []
    for img in imgs:
        H, W = img.shape
        if ph > H or pw > W:
            raise ValueError(f"patch_size {(ph, pw)} exceeds the image size {(H, W)}")
        rows = rng.randint(0, H - ph + 1, size=n_patches)
        cols = rng.randint(0, W - pw + 1, size=n_patches)
        win = np.lib.stride_tricks.sliding_window_view(img, (ph, pw))
        out.append(win[rows, cols].reshape(n_patches, ph * pw))
    X = np.concatenate(out, axis=0)
    X = X - X.mean(axis=1, keepdims=True)
    if normalize:
        std = X.std()
        if std > 0:
            X = X / std
    return X


@validate_params(
    {
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_freqs": [Interval(numbers.Integral, 1, None, closed="left")],
        "drop_dc": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_dct_dictionary(
    patch_size: int = 8, n_freqs: int = 16, *, drop_dc: bool = True
) -> np.ndarray:
    """Overcomplete 2-D DCT dictionary for square image patches (atoms as rows).

    Atom ``(u, v)`` is ``cos(pi (i + 1/2) u / n_freqs) cos(pi (j + 1/2) v / n_freqs)`` on the
    ``patch_size x patch_size`` grid, for ``n_freqs x n_freqs`` frequency pairs; with
    ``drop_dc`` the constant atom is removed and every atom is centred. Atoms have unit norm.

    Parameters
    ----------
    patch_size : int, default=8
        Patch side.
    n_freqs : int, default=16
        Frequencies per axis (``n_freqs > patch_size`` gives an overcomplete dictionary).
    drop_dc : bool, default=True
        Drop the constant atom and centre the others (for mean-removed patches).

    Returns
    -------
    D : ndarray of shape (n_freqs**2 - drop_dc, patch_size**2)
        The dictionary.

    Notes
    -----
    The fixed overcomplete DCT dictionary used as a natural-patch oracle (k = 255 for 8x8
    patches).

    References
    ----------
    .. [1] M. Elad, M. Aharon, "Image denoising via sparse and redundant representations over
       learned dictionaries", IEEE Trans. Image Processing 15(12), 2006.

    Examples
    --------
    >>> from sparsestat.datasets import make_dct_dictionary
    >>> make_dct_dictionary(8, 16).shape
    (255, 64)
    """
    t = np.arange(patch_size)
    f = np.arange(n_freqs)
    B = np.cos(np.pi * (t[:, None] + 0.5) * f[None, :] / n_freqs)
    atoms = np.einsum("ia,jb->abij", B, B).reshape(n_freqs * n_freqs, patch_size * patch_size)
    if drop_dc:
        atoms = atoms[1:] - atoms[1:].mean(axis=1, keepdims=True)
    norms = np.linalg.norm(atoms, axis=1, keepdims=True)
    keep = norms[:, 0] > 1e-12
    return atoms[keep] / norms[keep]
