"""Local differential privacy: mechanisms, a per-user budget accountant and LDP regression.

Every user randomises their own data on their own device (the local model); the server
only ever sees the randomised reports. Client reports (``privatize``, ``randomise``) use
OpenDP's exact samplers with fresh operating-system entropy; ``fit`` and ``partial_fit`` on
raw data are simulations. See the user guide pages "Privacy" and "Threat model".
"""

from sparsestat.privacy._dask import fit_ldp_dask
from sparsestat.privacy._iht import LDPIHTRegressor
from sparsestat.privacy._nldp import LDPSparseLinearRegression
from sparsestat.privacy._reports import LDPReports
from sparsestat.privacy.accountant import BudgetAccountant, BudgetError
from sparsestat.privacy.mechanisms import (
    CoordinateRRMechanism,
    DuchiLinfMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    PrivacyCheckError,
    UserStreams,
    gaussian_delta,
    gaussian_sigma,
    opendp_available,
    sampler,
)

__all__ = [
    "BudgetAccountant",
    "BudgetError",
    "CoordinateRRMechanism",
    "DuchiLinfMechanism",
    "GaussianMechanism",
    "LDPIHTRegressor",
    "LDPReports",
    "LDPSparseLinearRegression",
    "LaplaceMechanism",
    "PrivacyCheckError",
    "UserStreams",
    "fit_ldp_dask",
    "gaussian_delta",
    "gaussian_sigma",
    "opendp_available",
    "sampler",
]
