"""Demo data for a whole trust on one machine: real Coventry areas, synthetic people and devices.

:func:`coventry_lsoas` gives the real ONS 2021 LSOAs of Coventry (see ``PROVENANCE.md``);
:func:`write_demo_sources` writes deterministic synthetic source files for the council,
health and social-care nodes, each in the real format its adapter reads.
"""

from ._generate import DemoSources, write_demo_sources
from ._lsoa import Lsoa, coventry_lsoas

__all__ = ["DemoSources", "Lsoa", "coventry_lsoas", "write_demo_sources"]
