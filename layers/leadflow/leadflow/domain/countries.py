"""Countries as leads write them: an ISO 3166 alpha-2 code or an English name, any case.

One table serves both the lead's timezone (waits and quiet hours) and its country code (the
lawful basis of consent.yaml's regions). Pure: no AWS, no clock.
"""

from __future__ import annotations

from functools import lru_cache

# A country's main timezone, by ISO 3166 alpha-2 code and English name (lower case).
_COUNTRY_ZONES: dict[str, tuple[str, ...]] = {
    "America/New_York": ("us", "usa", "united states", "united states of america", "america"),
    "America/Toronto": ("ca", "canada"),
    "America/Mexico_City": ("mx", "mexico"),
    "America/Sao_Paulo": ("br", "brazil", "brasil"),
    "America/Argentina/Buenos_Aires": ("ar", "argentina"),
    "America/Santiago": ("cl", "chile"),
    "America/Bogota": ("co", "colombia"),
    "America/Lima": ("pe", "peru"),
    "America/Caracas": ("ve", "venezuela"),
    "America/Guayaquil": ("ec", "ecuador"),
    "America/Montevideo": ("uy", "uruguay"),
    "America/Asuncion": ("py", "paraguay"),
    "America/La_Paz": ("bo", "bolivia"),
    "America/Costa_Rica": ("cr", "costa rica"),
    "America/Panama": ("pa", "panama"),
    "America/Guatemala": ("gt", "guatemala"),
    "America/Santo_Domingo": ("do", "dominican republic"),
    "America/Puerto_Rico": ("pr", "puerto rico"),
    "America/Jamaica": ("jm", "jamaica"),
    "America/Havana": ("cu", "cuba"),
    "Europe/London": ("gb", "uk", "united kingdom", "great britain", "britain", "england", "scotland", "wales"),
    "Europe/Dublin": ("ie", "ireland"),
    "Europe/Paris": ("fr", "france"),
    "Europe/Berlin": ("de", "germany", "deutschland"),
    "Europe/Amsterdam": ("nl", "netherlands", "the netherlands", "holland"),
    "Europe/Brussels": ("be", "belgium"),
    "Europe/Luxembourg": ("lu", "luxembourg"),
    "Europe/Zurich": ("ch", "switzerland"),
    "Europe/Vienna": ("at", "austria"),
    "Europe/Rome": ("it", "italy"),
    "Europe/Madrid": ("es", "spain"),
    "Europe/Lisbon": ("pt", "portugal"),
    "Europe/Copenhagen": ("dk", "denmark"),
    "Europe/Stockholm": ("se", "sweden"),
    "Europe/Oslo": ("no", "norway"),
    "Europe/Helsinki": ("fi", "finland"),
    "Atlantic/Reykjavik": ("is", "iceland"),
    "Europe/Warsaw": ("pl", "poland"),
    "Europe/Prague": ("cz", "czechia", "czech republic"),
    "Europe/Bratislava": ("sk", "slovakia"),
    "Europe/Budapest": ("hu", "hungary"),
    "Europe/Bucharest": ("ro", "romania"),
    "Europe/Sofia": ("bg", "bulgaria"),
    "Europe/Athens": ("gr", "greece"),
    "Europe/Zagreb": ("hr", "croatia"),
    "Europe/Ljubljana": ("si", "slovenia"),
    "Europe/Belgrade": ("rs", "serbia"),
    "Europe/Kyiv": ("ua", "ukraine"),
    "Europe/Minsk": ("by", "belarus"),
    "Europe/Vilnius": ("lt", "lithuania"),
    "Europe/Riga": ("lv", "latvia"),
    "Europe/Tallinn": ("ee", "estonia"),
    "Europe/Moscow": ("ru", "russia", "russian federation"),
    "Europe/Istanbul": ("tr", "turkey", "türkiye", "turkiye"),
    "Europe/Malta": ("mt", "malta"),
    "Asia/Nicosia": ("cy", "cyprus"),
    "Asia/Jerusalem": ("il", "israel"),
    "Asia/Dubai": ("ae", "uae", "united arab emirates"),
    "Asia/Riyadh": ("sa", "saudi arabia"),
    "Asia/Qatar": ("qa", "qatar"),
    "Asia/Kuwait": ("kw", "kuwait"),
    "Asia/Bahrain": ("bh", "bahrain"),
    "Asia/Muscat": ("om", "oman"),
    "Asia/Amman": ("jo", "jordan"),
    "Asia/Beirut": ("lb", "lebanon"),
    "Asia/Tehran": ("ir", "iran"),
    "Asia/Baghdad": ("iq", "iraq"),
    "Africa/Cairo": ("eg", "egypt"),
    "Africa/Casablanca": ("ma", "morocco"),
    "Africa/Algiers": ("dz", "algeria"),
    "Africa/Tunis": ("tn", "tunisia"),
    "Africa/Lagos": ("ng", "nigeria"),
    "Africa/Accra": ("gh", "ghana"),
    "Africa/Nairobi": ("ke", "kenya"),
    "Africa/Addis_Ababa": ("et", "ethiopia"),
    "Africa/Dar_es_Salaam": ("tz", "tanzania"),
    "Africa/Kampala": ("ug", "uganda"),
    "Africa/Johannesburg": ("za", "south africa"),
    "Africa/Dakar": ("sn", "senegal"),
    "Africa/Abidjan": ("ci", "ivory coast", "côte d'ivoire", "cote d'ivoire"),
    "Asia/Kolkata": ("in", "india"),
    "Asia/Karachi": ("pk", "pakistan"),
    "Asia/Dhaka": ("bd", "bangladesh"),
    "Asia/Colombo": ("lk", "sri lanka"),
    "Asia/Kathmandu": ("np", "nepal"),
    "Asia/Shanghai": ("cn", "china", "people's republic of china"),
    "Asia/Hong_Kong": ("hk", "hong kong"),
    "Asia/Taipei": ("tw", "taiwan"),
    "Asia/Tokyo": ("jp", "japan"),
    "Asia/Seoul": ("kr", "south korea", "korea", "republic of korea"),
    "Asia/Singapore": ("sg", "singapore"),
    "Asia/Kuala_Lumpur": ("my", "malaysia"),
    "Asia/Bangkok": ("th", "thailand"),
    "Asia/Ho_Chi_Minh": ("vn", "vietnam", "viet nam"),
    "Asia/Manila": ("ph", "philippines"),
    "Asia/Jakarta": ("id", "indonesia"),
    "Asia/Almaty": ("kz", "kazakhstan"),
    "Asia/Tashkent": ("uz", "uzbekistan"),
    "Australia/Sydney": ("au", "australia"),
    "Pacific/Auckland": ("nz", "new zealand"),
}
COUNTRY_TIMEZONES: dict[str, str] = {name: zone for zone, names in _COUNTRY_ZONES.items() for name in names}
"""Country code or English name (lower case) -> its main IANA timezone."""


COUNTRY_CODES: dict[str, str] = {name: names[0].upper() for names in _COUNTRY_ZONES.values() for name in names}
"""Country code or English name (lower case) -> its ISO 3166 alpha-2 code (upper case)."""


@lru_cache(maxsize=1024)
def country_code(value: str) -> str | None:
    """The ISO 3166 alpha-2 code (upper case) of a country as a lead wrote it, None when unknown.

    Args:
        value: a code ("de", "DE") or an English name ("Germany", "the Netherlands", "U.S.A.").
    """
    key = " ".join(value.replace(".", "").split()).casefold()
    code = COUNTRY_CODES.get(key)
    if code is None and len(key) == 2 and key.isascii() and key.isalpha():
        return key.upper()  # a code the table has no timezone for is still a code
    return code
