"""Local differential privacy: mechanisms, a per-user budget accountant and LDP regression.

Every user randomises their own data on their own device (the local model); the server
only ever sees the randomised reports. See the user guide page "Privacy" for the threat
model.
"""

from sparsestat.privacy._dask import fit_ldp_dask
from sparsestat.privacy._iht import LDPIHTRegressor
from sparsestat.privacy._nldp import LDPSparseLinearRegression
from sparsestat.privacy.accountant import BudgetAccountant, BudgetError
from sparsestat.privacy.mechanisms import (
    CoordinateRRMechanism,
    DuchiLinfMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    UserStreams,
    gaussian_sigma,
    opendp_available,
)

__all__ = [
    "BudgetAccountant",
    "BudgetError",
    "CoordinateRRMechanism",
    "DuchiLinfMechanism",
    "GaussianMechanism",
    "LDPIHTRegressor",
    "LDPSparseLinearRegression",
    "LaplaceMechanism",
    "UserStreams",
    "fit_ldp_dask",
    "gaussian_sigma",
    "opendp_available",
]
