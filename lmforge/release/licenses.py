"""Licences: SPDX ids checked offline (the SPDX list `packaging` ships) and sorted into the kinds
of openness the Model Openness Framework asks for per content type.

MOF: code under an OSI-approved licence; data (datasets, evaluation data) and parameters under an
open data licence (OSI licences are accepted there too, as the MOT accepts Apache-2.0 weights);
documents under an open content licence (CC-BY family, CC0).
"""

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from lmforge.errors import ConfigError

OSI_APPROVED = frozenset(
    """
0BSD AAL AFL-1.1 AFL-1.2 AFL-2.0 AFL-2.1 AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later APL-1.0 APSL-2.0
Apache-1.1 Apache-2.0 Artistic-2.0 BSD-1-Clause BSD-2-Clause BSD-2-Clause-Patent BSD-3-Clause
BSD-3-Clause-LBNL BSL-1.0 CATOSL-1.1 CDDL-1.0 CECILL-2.1 CNRI-Python ECL-1.0 ECL-2.0 EFL-2.0
EPL-1.0 EPL-2.0 EUDatagrid EUPL-1.1 EUPL-1.2 Entessa Fair Frameworx-1.0 GPL-2.0-only
GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND IPA IPL-1.0 ISC LGPL-2.0-only LGPL-2.0-or-later
LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later LPL-1.02 LPPL-1.3c MIT MIT-0
MPL-1.0 MPL-1.1 MPL-2.0 MS-PL MS-RL MirOS Motosoto MulanPSL-2.0 NCSA NGPL NPOSL-3.0 NTP OFL-1.1
OGTSL OSL-1.0 OSL-2.0 OSL-2.1 OSL-3.0 PHP-3.0 PHP-3.01 PostgreSQL Python-2.0 QPL-1.0 RPL-1.1
RPL-1.5 RPSL-1.0 RSCPL SimPL-2.0 Sleepycat SPL-1.0 UCL-1.0 UPL-1.0 Unlicense VSL-1.0 W3C Watcom-1.0
Xnet ZPL-2.0 ZPL-2.1 Zlib
""".split()
)

OPEN_DATA = frozenset(
    """
CDLA-Permissive-1.0 CDLA-Permissive-2.0 CDLA-Sharing-1.0 CC0-1.0 CC-BY-1.0 CC-BY-2.0 CC-BY-2.5
CC-BY-3.0 CC-BY-4.0 CC-BY-SA-1.0 CC-BY-SA-2.0 CC-BY-SA-2.5 CC-BY-SA-3.0 CC-BY-SA-4.0 ODC-By-1.0
ODbL-1.0 PDDL-1.0 OGL-UK-3.0 DL-DE-BY-2.0 DL-DE-ZERO-2.0 etalab-2.0 OGDL-Taiwan-1.0 O-UDA-1.0
""".split()
)

OPEN_DOCUMENT = frozenset(x for x in OPEN_DATA if x.startswith("CC")) | {"GFDL-1.3-only", "GFDL-1.3-or-later"}

OPEN_BY_KIND = {"code": OSI_APPROVED, "data": OPEN_DATA | OSI_APPROVED, "document": OPEN_DOCUMENT}
KIND_WORDS = {
    "code": "an OSI-approved licence",
    "data": "an open data licence (or OSI-approved)",
    "document": "an open content licence (CC-BY family, CC0)",
}


def spdx(license_id: str, what: str) -> str:
    """The canonical SPDX id; a one-line error naming `what` when it is not one."""
    try:
        canonical = canonicalize_license_expression(license_id)
    except InvalidLicenseExpression:
        raise ConfigError(
            f"{what}: '{license_id}' is not a known SPDX licence id (see https://spdx.org/licenses/)"
        ) from None
    if " " in canonical:
        raise ConfigError(f"{what}: give one SPDX id, not the expression '{license_id}'")
    return canonical


def is_open(license_id: str, kind: str) -> bool:
    return license_id in OPEN_BY_KIND[kind]


def hub_license(license_id: str) -> dict:
    """The model card's licence metadata: the Hub's lower-case id where it has one, else 'other'
    with the SPDX id as its name."""
    known = {
        "Apache-2.0",
        "MIT",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-3.0",
        "CC-BY-SA-3.0",
        "CDLA-Permissive-1.0",
        "CDLA-Permissive-2.0",
        "CDLA-Sharing-1.0",
        "ODbL-1.0",
        "PDDL-1.0",
        "MPL-2.0",
        "GPL-3.0-only",
        "LGPL-3.0-only",
        "AGPL-3.0-only",
        "Artistic-2.0",
        "ECL-2.0",
        "EPL-2.0",
        "EUPL-1.2",
        "BSL-1.0",
        "Unlicense",
        "AFL-3.0",
    }
    if license_id in known:
        return {"license": license_id.lower().replace("-only", "")}
    if license_id == "ODC-By-1.0":
        return {"license": "odc-by"}
    return {
        "license": "other",
        "license_name": license_id.lower(),
        "license_link": f"https://spdx.org/licenses/{license_id}.html",
    }
