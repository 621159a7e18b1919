"""Countries as ISO 3166-1 alpha-2 codes, named from CLDR's list (babel).

CLDR's list of regions holds every code ISO 3166-1 assigns, plus a few of its own (the EU,
the Canary Islands, Kosovo, the "unknown region"...): those are left out, so a stored
country is always an ISO code.
"""

import unicodedata
from functools import cache

from babel import Locale

# CLDR's two-letter regions that ISO 3166-1 does not assign.
NOT_ISO_3166 = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"}
)


@cache
def countries() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> the country's English name, in code order."""
    names = Locale("en").territories
    return {
        code: names[code]
        for code in sorted(names)
        if len(code) == 2 and code.isalpha() and code not in NOT_ISO_3166
    }


def country_name(code: str) -> str:
    """The country's English name, or the code itself when it is not one."""
    return countries().get(code, code)


def country_choices() -> list[tuple[str, str]]:
    """Choices for a form, by name, after an empty "not set" one."""
    by_name = sorted(countries().items(), key=lambda item: _sort_key(item[1]))
    return [("", "Not set"), *((code, f"{name} ({code})") for code, name in by_name)]


def _sort_key(name: str) -> str:
    """Åland Islands among the A's, Côte d'Ivoire among the C's."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
