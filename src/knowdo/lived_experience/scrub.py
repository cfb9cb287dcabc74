"""Masking personal data in lived-experience quotes and summaries, before anything is readable.

`scrub(text)` returns the text with every piece of personal data it finds replaced by a mask
(`[NAME]`, `[PHONE]`, `[EMAIL]`, `[HANDLE]`, `[ADDRESS]`, `[POSTCODE]`, `[NHS_NUMBER]`, `[ID]`,
`[DOB]`, `[DATE]`, `[URL]`, ...); `residual_pii(text)` lists what would still be masked in a text
(empty for a scrubbed one), for the marts' quality gate. `RESIDUAL_SQL_PATTERNS` holds the
high-precision subset as PostgreSQL regular expressions, for a GX expectation in the warehouse.

The library: Microsoft Presidio (presidio-analyzer finds, presidio-anonymizer replaces; MIT,
maintained by Microsoft, the usual open PII toolkit). Presidio's named-entity recogniser needs a
trained spaCy (or stanza, or transformers) model, and none can be installed here from a registry we
trust: the official spaCy models are not on PyPI (third-party re-uploads are not an acceptable
supply chain), stanza and GLiNER download weights from a model hub at run time. So Presidio runs
with spaCy's *blank* multi-language tokenizer (`spacy.blank("xx")`, no weights) and only
recognisers that need no model:

- Presidio's own, where it has them: phone numbers (Google's libphonenumber, for the Being
  countries and the UK, national and international formats), URLs, IBANs, card numbers, IP
  addresses, UK National Insurance numbers;
- KnowDo's own, for what Presidio lacks or does only in English: e-mail addresses (Presidio's
  checks the domain with tldextract, which fetches the public-suffix list over the network), UK
  postcodes (the Royal Mail format, scored to be masked without a context word), NHS numbers (the
  mod-11 check digit, python-stdnum), Ecuadorian cedulas (python-stdnum's check digit), Moroccan
  CIN-like and Colombian cedula-like numbers (shape only: weak), any long run of digits (any other
  identifier: national ids of Egypt, Senegal, ..., an NHS number with a wrong check digit), full
  dates and dates of birth (English, French, Spanish and Arabic month names, numeric forms, Arabic-
  Indic digits), postal addresses (house number + street word, French "rue", Spanish "Calle 12 #
  34-56", Arabic "شارع" / "زنقة" ...), and person names.

Names without a model are found three ways, and the design fails safe (when unsure, mask):

1. cues in four languages: introductions ("my name is", "je m'appelle", "me llamo", "اسمي"),
   titles and honorifics (Mr, Mrs, Dr, Mme, Sr, Sra, Doña, السيد, الحاج, ...), speech verbs
   ("X said", "قالت X"), relatives followed by a name ("my son Karim", "ابني أحمد");
2. in Latin scripts, every capitalised word that is not a stop word of English, French or Spanish
   (spaCy's lists), not a word of KnowDo's own vocabulary (the sample geography, countries,
   interventions, ARCs: read from the dbt seeds) and not a month, day, language or a short acronym:
   a capitalised word nobody can vouch for is masked, at the start of a sentence too;
3. in Arabic script (no capitals), a short list of common Arabic given names; names that are also
   everyday words (نور light, أمل hope, كريم generous, ...) are masked only after a cue.

A name gazetteer from PyPI was considered and refused: `names-dataset` is built from the 2021
Facebook data leak, and `gender-guesser` is GPL and unmaintained. What this cannot do is in
docs/lived-experience.md ("What the scrubber cannot catch").
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable

import regex
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UkNinoRecognizer,
    UkPostcodeRecognizer,
    UrlRecognizer,
)
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from stdnum.ec import ci as ec_cedula
from stdnum.gb import nhs

from knowdo.config import Settings

# spaCy's multi-language class: a tokenizer only, no trained weights
LANGUAGE = "xx"
# The languages whose cues, stop words and month names the recognisers know. Every recogniser runs
# on every text whatever its declared language: quotes mix languages.
LANGUAGES = ("en", "fr", "es", "ar")
# Regions whose national phone formats are recognised: the Being countries and the UK.
PHONE_REGIONS = (
    "GB",
    "CO",
    "EC",
    "EG",
    "GH",
    "ID",
    "IN",
    "MA",
    "PK",
    "RO",
    "SN",
    "SL",
    "TZ",
    "VN",
)

MASKS = {
    "PERSON": "[NAME]",
    "PHONE_NUMBER": "[PHONE]",
    "EMAIL_ADDRESS": "[EMAIL]",
    "SOCIAL_HANDLE": "[HANDLE]",
    "POSTAL_ADDRESS": "[ADDRESS]",
    "UK_POSTCODE": "[POSTCODE]",
    "UK_NHS": "[NHS_NUMBER]",
    "NATIONAL_ID": "[ID]",
    "UK_NINO": "[ID]",
    "DATE_OF_BIRTH": "[DOB]",
    "DATE": "[DATE]",
    "URL": "[URL]",
    "IBAN_CODE": "[IBAN]",
    "CREDIT_CARD": "[CARD]",
    "IP_ADDRESS": "[IP]",
}
# A mask as it appears in scrubbed text: never itself taken for personal data.
MASK = regex.compile(r"\[(?:" + "|".join(sorted({m[1:-1] for m in MASKS.values()})) + r")\]")
SCORE_THRESHOLD = 0.3

# --- vocabulary -------------------------------------------------------------------------------

_L = r"[\p{L}\p{M}]"  # a letter (with its combining marks)
_CAP = r"\p{Lu}[\p{L}\p{M}'’-]*"  # a capitalised word
_AR = r"[\p{Arabic}]+"  # an Arabic word
_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")

MONTHS = {
    # English, French, Spanish; Arabic: Egyptian/Gulf (يناير...), Levantine (كانون الثاني...),
    # Maghreb (جانفي..., as written in Morocco and Algeria)
    "en": "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec",
    "fr": "janvier février fevrier mars avril mai juin juillet août aout septembre octobre "
    "novembre décembre decembre janv févr avr juil sept oct nov déc",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre "
    "noviembre diciembre",
    "ar": "يناير فبراير مارس أبريل ابريل إبريل مايو ماي يونيو يونيه يوليو يوليوز غشت أغسطس "
    "سبتمبر شتنبر أكتوبر اكتوبر نوفمبر نونبر ديسمبر دجنبر جانفي فيفري أفريل جوان جويلية أوت "
    "كانون تشرين شباط آذار نيسان أيار حزيران تموز آب أيلول",
}
DAYS = (
    "monday tuesday wednesday thursday friday saturday sunday lundi mardi mercredi jeudi vendredi "
    "samedi dimanche lunes martes miércoles jueves viernes sábado domingo"
)
# Capitalised words that are not names and not in a stop-word list: languages, nationalities,
# religions and festivals, institutions, and words quotes capitalise.
COMMON_CAPITALISED = (
    "english french spanish arabic wolof darija berber amazigh quechua kichwa hindi urdu bengali "
    "swahili twi pidgin romanian vietnamese indonesian african european british muslim christian "
    "islam ramadan eid easter christmas noël navidad god dieu dios allah covid whatsapp facebook "
    "instagram tiktok twitter youtube telegram messenger viber imo zoom skype "
    "google internet okay ok hello hi yes no oui non sí si bonjour hola gracias merci thanks "
    "ministry ministère ministerio hospital hôpital clinic clinique clínica centre center centro "
    "health santé salud service services servicio servicios council mosque church school "
    "university école escuela universidad government gouvernement gobierno police police policía "
    "nurse doctor médecin docteur doctora doctor psychologist psychologue psicólogo psicóloga "
    "therapy therapist thérapie terapia community communauté comunidad group groupe grupo "
    "talking therapies friendship bench problem management plus outreach treatment "
    "mental patient patients people family families familia famille social worker "
    "monday tuesday ok also and but then when after before because so however sometimes "
    "nobody everyone anyone someone something nothing everything please maybe perhaps "
    "ambulance emergency urgences urgencias a&e gp pharmacy pharmacie farmacia "
    # words that introduce personal data (kept: only what follows is masked)
    "email e-mail mail courriel correo phone telephone téléphone tél tel teléfono celular mobile "
    "portable call appelez llame address adresse dirección postcode born née né nacido nacida "
    "dob birthday naissance nacimiento"
)
# Words that are not names though a Spanish/French/English stop-word list may lack them, and
# particles inside names ("Valle del Cauca", "Ould Ahmed", "de la Cruz").
NAME_PARTICLES = (
    "de del la las los le du des da dos das di van von bin ben bint ibn el al ould ag ep y e"
)

# Short list of common Arabic given names (Arabic script). KnowDo's own: no maintained,
# openly licensed Arabic-script gazetteer is on PyPI. Names that are also everyday words are in
# AMBIGUOUS_ARABIC_NAMES and are masked only after a cue.
ARABIC_NAMES = (
    "محمد أحمد احمد محمود مصطفى علي حسن حسين عمر عثمان خالد يوسف إبراهيم ابراهيم إسماعيل اسماعيل "
    "عبد عبدالله عبدالرحمن عبدالعزيز عبداللطيف عبدالرحيم مراد ياسين يسين طارق هشام سمير نبيل عادل "
    "وليد هاني شريف أيمن ايمن رامي سامي ماجد رشيد حميد المهدي مهدي إدريس ادريس أيوب ايوب زكريا "
    "بلال حمزة أنس انس عمرو زياد فيصل منصور ناصر صلاح رضا إلياس الياس نزار توفيق سفيان عزيز "
    "جلال كمال فؤاد نجيب لحسن الحسين الحسن بوشعيب عبدالقادر عبدالكريم عبدالحق المصطفى "
    "فاطمة فاطمه خديجة عائشة عايشة مريم زينب سارة ساره هدى منى سعاد نادية ليلى سلمى أمينة امينة "
    "حليمة رقية ياسمين إيمان ايمان أسماء اسماء هند سناء رانيا دعاء آية شيماء نجلاء سهام حنان "
    "لطيفة مليكة نزهة زهرة الزهرة رشيدة خيرة حياة وفاء بشرى سميرة نعيمة كلثوم حفصة صفاء غادة "
    "سوسن عبير رحاب نهى نهاد هالة جميلة ثريا إكرام اكرام سكينة فتيحة يمينة"
)
AMBIGUOUS_ARABIC_NAMES = (
    "نور أمل امل كريم سعيد أمين امين جمال هدى حياة وفاء صفاء سهام بشرى عزيز لطيفة جميلة زهرة "
    "الزهرة إيمان ايمان حنان رضا أسماء اسماء آية عادل كمال فؤاد شريف صلاح وليد نبيل منصور ناصر "
    "رشيد حميد هالة نعيمة سامي هاني ماجد جلال"
)
# A word after which the next word belongs to the same name (عبد الله, أبو بكر, بن علي).
ARABIC_NAME_JOINERS = frozenset({"عبد", "أبو", "ابو", "أم", "ام", "بن", "ابن", "بنت"})

ARABIC_PREFIXES = "وفبل"  # و and, ف so, ب with, ل to: written joined to the next word
# Elided French words before an apostrophe (J'ai, L'infirmière): the word after them decides.
FRENCH_ELISIONS = frozenset(
    {"c", "d", "j", "l", "m", "n", "s", "t", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu"}
)


@functools.cache
def _stop_words() -> frozenset[str]:
    from spacy.lang.ar.stop_words import STOP_WORDS as AR
    from spacy.lang.en.stop_words import STOP_WORDS as EN
    from spacy.lang.es.stop_words import STOP_WORDS as ES
    from spacy.lang.fr.stop_words import STOP_WORDS as FR

    return frozenset(w.lower() for w in EN | FR | ES | AR)


@functools.cache
def knowdo_vocabulary() -> frozenset[str]:
    """Place, country, intervention and ARC names of KnowDo's seeds (lower case): never names.

    Read from the dbt seeds (Settings.dbt_project_dir/seeds), so the sample geography and every
    geography added there is kept readable; a seed that is missing is skipped.
    """
    seeds = Settings.from_env().dbt_project_dir / "seeds"
    columns = {
        "ref_geography.csv": "geography_name",
        "ref_england_geography.csv": "geography_name",
        "ref_countries.csv": "country_name",
        "ref_interventions.csv": "intervention_name",
        "ref_arcs.csv": "arc_name",
    }
    terms: set[str] = set()
    for name, column in columns.items():
        path = seeds / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if value := (row.get(column) or "").strip():
                    terms.add(value.lower())
    return frozenset(terms)


@functools.cache
def _allowed_words() -> frozenset[str]:
    words = set(_stop_words())
    for text in (*MONTHS.values(), DAYS, COMMON_CAPITALISED, NAME_PARTICLES):
        words.update(text.split())
    # titles stay, the name after them goes ("Mrs [NAME]")
    words.update(t.lower() for t in regex.findall(r"[\p{L}]+", _TITLES_LATIN))
    for term in knowdo_vocabulary():
        words.update(regex.findall(r"[\p{L}\p{M}'’-]+", term))
    return frozenset(words)


@functools.cache
def _allowed_phrases() -> regex.Pattern:
    """The multi-word names of KnowDo's vocabulary, longest first ('Valle del Cauca')."""
    phrases = sorted(knowdo_vocabulary(), key=len, reverse=True)
    return regex.compile(
        r"(?i)(?<![\p{L}\p{M}])(?:" + "|".join(regex.escape(p) for p in phrases) + r")(?![\p{L}])"
    )


def _words(text: str) -> str:
    return "|".join(regex.escape(w) for w in sorted(text.split(), key=len, reverse=True))


# --- recognisers ------------------------------------------------------------------------------


class _RegexRecognizer(EntityRecognizer):
    """One entity found by one or more regular expressions; the span is the group 'pii' if any.

    `check` (optional) validates the span (a check digit); `score` is what a match is worth.
    """

    def __init__(self, entity: str, patterns: Iterable[str], score: float, check=None, name=None):
        self.patterns = [regex.compile(p, regex.V1) for p in patterns]
        self.score = score
        self.check = check
        super().__init__(
            supported_entities=[entity], supported_language=LANGUAGE, name=name or entity
        )

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities, nlp_artifacts: NlpArtifacts | None = None):
        results = []
        for pattern in self.patterns:
            for m in pattern.finditer(text):
                group = "pii" if "pii" in pattern.groupindex and m.group("pii") else 0
                start, end = m.span(group)
                if start == end or (self.check and not self.check(m.group(group))):
                    continue
                results.append(RecognizerResult(self.supported_entities[0], start, end, self.score))
        return results


def _digits(value: str) -> str:
    return "".join(c for c in value.translate(_ARABIC_DIGITS) if c.isdigit())


def _nhs_valid(value: str) -> bool:
    return nhs.is_valid(_digits(value))


def _ec_cedula_valid(value: str) -> bool:
    return ec_cedula.is_valid(_digits(value))


_D = r"[0-9٠-٩]"  # a digit, Western or Arabic-Indic
_ALL_MONTHS = _words(" ".join(MONTHS.values()))
_DAY = rf"{_D}{{1,2}}(?:st|nd|rd|th|er|º|°)?"
_YEAR = rf"(?:{_D}{{4}})"
_DATE = (
    rf"(?:{_D}{{1,2}}\s?[/.-]\s?{_D}{{1,2}}\s?[/.-]\s?(?:{_D}{{4}}|{_D}{{2}})"  # 03/04/1985
    rf"|{_D}{{4}}-{_D}{{1,2}}-{_D}{{1,2}}"  # 1985-04-03
    rf"|{_DAY}\s+(?:de\s+)?(?i:{_ALL_MONTHS})\.?,?\s+(?:de\s+|del\s+)?{_YEAR}"  # 3 mars 1985
    rf"|(?i:{_ALL_MONTHS})\.?\s+{_DAY},?\s+{_YEAR})"  # March 3, 1985
)
_BIRTH = (
    r"(?i:born|date\s+of\s+birth|d\.?o\.?b\.?|birthday|né|née|nés|date\s+de\s+naissance|"
    r"naissance|nacid[oa]s?|nací|naci|fecha\s+de\s+nacimiento|nacimiento|cumpleaños)"
    r"|مواليد|مولود|مولودة|ولدت|وُلدت|ولد|الميلاد|ميلادي|ميلاده|ميلادها"
)


def _date_recognisers() -> list[EntityRecognizer]:
    birth_then_date = (
        rf"(?:{_BIRTH})[\s:,]*(?:(?i:on|le|el|the|en|in|à|a|el\s+día|en\s+el\s+año|in\s+the\s+year"
        rf"|في|عام|سنة|يوم)\s+)*(?P<pii>{_DATE}|{_YEAR}|(?i:{_ALL_MONTHS})\s+{_YEAR})"
    )
    return [
        _RegexRecognizer("DATE_OF_BIRTH", [birth_then_date], 0.95),
        _RegexRecognizer("DATE", [rf"(?<![\d٠-٩])(?P<pii>{_DATE})(?![\d٠-٩])"], 0.6),
    ]


def _identifier_recognisers() -> list[EntityRecognizer]:
    sep = r"[\s.-]?"
    return [
        # an NHS number: 10 digits (3-3-4 as written) whose mod-11 check digit holds
        _RegexRecognizer(
            "UK_NHS",
            [rf"(?<![\d٠-٩])(?P<pii>{_D}{{3}}{sep}{_D}{{3}}{sep}{_D}{{4}})(?![\d٠-٩])"],
            1.0,
            check=_nhs_valid,
        ),
        # an Ecuadorian cedula: 10 digits, province 01-24 and a mod-10 check digit
        _RegexRecognizer(
            "NATIONAL_ID",
            [r"(?<!\d)(?P<pii>\d{9}-?\d)(?!\d)"],
            0.39,  # below a phone number's 0.4: ten digits are often both
            check=_ec_cedula_valid,
            name="EcuadorCedula",
        ),
        # Moroccan CIN-like: one or two capital letters then 5-6 digits (shape only)
        _RegexRecognizer(
            "NATIONAL_ID", [r"(?<![\p{L}\d])[A-Z]{1,2}\s?\d{5,6}(?!\d)"], 0.5, name="MoroccoCin"
        ),
        # Colombian cedula-like: digits grouped by dots in threes (52.123.456) (shape only)
        _RegexRecognizer(
            "NATIONAL_ID",
            [r"(?<![\d.,])\d{1,3}(?:\.\d{3}){2,3}(?![\d]|[.,]\d)"],
            0.35,
            name="ColombiaCedula",
        ),
        # fail safe: any run of 7 or more digits (with spaces, dots or dashes between groups) is an
        # identifier of some kind until shown otherwise (phone numbers score higher and win)
        _RegexRecognizer(
            "NATIONAL_ID",
            [rf"(?<![\d٠-٩])\+?{_D}(?:[\s.-]?{_D}){{6,}}(?![\d٠-٩])"],
            0.31,
            name="LongNumber",
        ),
    ]


def _contact_recognisers() -> list[EntityRecognizer]:
    email = r"(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+"
    # written out so no form takes it: "fatou.diop at gmail dot com", "arroba", "arobase"
    spelled = (
        r"(?i)(?<![\p{L}\p{N}._-])[\p{L}\p{N}._-]+\s*[\[(]?\s*(?:at|arobase|arroba|chez)\s*[\])]?\s*"
        r"[\p{L}\p{N}-]+(?:\s*[\[(]?\s*(?:dot|point|punto|\.)\s*[\])]?\s*"
        r"(?:com|org|net|fr|es|sn|ma|co|ec|eg|gh|uk|in|pk|id|ro|sl|tz|vn|edu|gov|info))+\b"
    )
    # a social-media or messaging handle: @fatou_diop (an e-mail's @ is taken above)
    handle = r"(?<![\p{L}\p{N}._%+-])@[\p{L}\p{N}_.]{3,30}\b"
    postcode = UkPostcodeRecognizer.PATTERNS[0].regex
    return [
        _RegexRecognizer("EMAIL_ADDRESS", [email, spelled], 1.0),
        _RegexRecognizer("SOCIAL_HANDLE", [handle], 0.9),
        PatternRecognizer(
            "UK_POSTCODE",
            name="UkPostcode",
            supported_language=LANGUAGE,
            patterns=[Pattern("UK postcode (Royal Mail format)", postcode, 0.8)],
        ),
        PhoneRecognizer(supported_language=LANGUAGE, supported_regions=PHONE_REGIONS, leniency=1),
        UrlRecognizer(supported_language=LANGUAGE),
        IbanRecognizer(supported_language=LANGUAGE),
        CreditCardRecognizer(supported_language=LANGUAGE),
        IpRecognizer(supported_language=LANGUAGE),
        UkNinoRecognizer(supported_language=LANGUAGE),
    ]


_STREET_EN = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Close|Drive|Way|Crescent|Terrace|Place|Court|Gardens|"
    "Grove|Square|Hill|Row|Walk|Parade|Mews|Estate|House|Flats|Tower"
)
_STREET_FR = (
    "rue|avenue|av\\.|boulevard|bd|bld|chemin|allée|impasse|place|route|quai|cité|lotissement|"
    "résidence|quartier|villa|cour"
)
_STREET_ES = "calle|cl\\.?|carrera|cra\\.?|kr\\.?|avenida|av\\.?|diagonal|dg\\.?|transversal|tv\\.?"
_STREET_AR = "شارع|ش\\.|زنقة|درب|حي|عمارة|شقة|إقامة|اقامة|تجزئة|عمارات|برج"


def _address_recognisers() -> list[EntityRecognizer]:
    word = r"[\p{L}\p{M}'’.-]+"
    patterns = [
        # English: 12 Station Road, 4a Mill Lane, Flat 3
        rf"\b\d{{1,4}}[A-Za-z]?,?\s+(?:{word}\s+){{1,3}}(?:{_STREET_EN})\b\.?",
        r"(?i:\bflat|\bapartment|\bapt\.?)\s+\d+[A-Za-z]?\b",
        # French: 12 bis rue des Lilas, 5, avenue Hassan II, Villa n° 12 Cité Keur Gorgui
        rf"\b\d{{1,4}}(?:\s?(?i:bis|ter))?,?\s+(?i:{_STREET_FR})\s+(?:{word}\s*){{1,4}}",
        rf"(?i:\b(?:{_STREET_FR}))\s+(?:(?i:n[°º]|no\.?)\s*)?\d+",
        r"(?i:\bB\.?P\.?|boîte\s+postale|apartado(?:\s+postal)?|casilla)\s*\d+",
        # Spanish (Colombia, Ecuador): Calle 45 # 12-30, Carrera 7 No. 32-16, Av. Amazonas N34-12
        (
            rf"(?i:\b(?:{_STREET_ES}))\s*\d+\s?[A-Za-z]?(?:\s*(?i:bis))?\s*"
            rf"(?:#|(?i:no\.?|n[°º]\.?))\s*\d+\s?[A-Za-z]?\s*-\s*\d+"
        ),
        rf"(?i:\b(?:{_STREET_ES}))\s+(?:{word}\s+){{1,3}}[NSEO]?\d+-\d+",
        rf"(?i:\b(?:calle|avenida))\s+(?:(?:de|del|la|los)\s+)?(?:{word}\s+){{0,2}}{word},?\s+\d+",
        # Arabic: شارع النصر رقم 12, زنقة 5, حي السلام عمارة 4 شقة 2
        rf"(?<!\p{{Arabic}})[وبفل]?(?:{_STREET_AR})\s+(?:{_AR}\s+){{0,2}}(?:{_AR}|{_D}+)(?:\s*(?:رقم|،)?\s*{_D}+)?",
        rf"(?:رقم)\s*{_D}+",
    ]
    return [_RegexRecognizer("POSTAL_ADDRESS", patterns, 0.7)]


_NAME_CUES = (
    r"(?i:my\s+name\s+is|my\s+name's|i\s+am\s+called|i'm\s+called|his\s+name\s+is|her\s+name\s+is"
    r"|(?:he|she)\s+is\s+called|named|je\s+m['’]appelle|il\s+s['’]appelle|elle\s+s['’]appelle"
    r"|mon\s+nom\s+est|mon\s+nom\s+c['’]est|mon\s+prénom\s+est|nommée?|prénommée?|me\s+llamo"
    r"|se\s+llama|mi\s+nombre\s+es|su\s+nombre\s+es|llamad[oa])"
)
_TITLES_LATIN = (
    r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Nurse|Doctor|Auntie|Aunty|Uncle|Imam|Pastor|Sheikh|Rev"
    r"|M|Mme|Mlle|Monsieur|Madame|Mademoiselle|Docteur|Pr|Maître|Tonton|Tata|Serigne|Sokhna"
    r"|El\s+Hadj|Hadja|Oustaz|Sr|Sra|Srta|Señor|Señora|Señorita|Don|Doña|Dra|Doctora|Profe|Tía|Tío"
)
_TITLES_AR = (
    r"السيد|السيدة|الآنسة|الدكتور|الدكتورة|الأستاذ|الأستاذة|الاستاذ|الاستاذة|الحاج|الحاجة"
    r"|الشيخ|أستاذ|استاذ|دكتور|دكتورة|سي|للا|عم|أبو|ابو"
)
_RELATIVES_LATIN = (
    r"(?i:my|our|his|her|mon|ma|mes|notre|son|sa|mi|mis|nuestr[oa]|su)\s+"
    r"(?i:son|daughter|husband|wife|mother|father|mum|mom|dad|brother|sister|friend|neighbour"
    r"|neighbor|cousin|aunt|uncle|grandmother|grandfather|nurse|doctor|therapist|counsellor"
    r"|fils|fille|mari|femme|mère|père|frère|sœur|soeur|ami|amie|voisin|voisine|cousin|cousine"
    r"|tante|oncle|grand-mère|grand-père|infirmière|infirmier|médecin|hijo|hija|esposo|esposa"
    r"|marido|mujer|mamá|madre|papá|padre|hermano|hermana|amigo|amiga|vecino|vecina|prim[oa]"
    r"|tía|tío|abuela|abuelo|enfermera|enfermero|médico|médica)"
)
_RELATIVES_AR = (
    r"ابني|ابنتي|بنتي|زوجي|زوجتي|أمي|امي|أبي|ابي|أخي|اخي|أختي|اختي|صديقي|صديقتي|جاري|جارتي"
    r"|خالي|خالتي|عمي|عمتي|جدتي|جدي"
)
_SPEECH_AFTER = (
    r"(?i:said|says|told|asked|explained|replied|a\s+dit|m['’]a\s+dit|dit|disait|a\s+expliqué"
    r"|dijo|me\s+dijo|dice|decía|contó|explicó)"
)
_SPEECH_AR = r"قال|قالت|يقول|تقول|أخبرني|أخبرتني|أخبرنا|حكى|حكت"


def _name_recognisers() -> list[EntityRecognizer]:
    cap_name = rf"{_CAP}(?:\s+(?:(?:{_words(NAME_PARTICLES)})\s+)?{_CAP}){{0,3}}"
    word = r"[\p{L}\p{M}'’-]+"
    ar_name = rf"{_AR}(?:\s+{_AR})?"
    return [
        # an introduction: the next one or two words whatever their case, stopping at a stop word
        _CueNameRecognizer(rf"(?:{_NAME_CUES})\s*:?\s+(?P<pii>{word}(?:\s+{word})?)"),
        _CueNameRecognizer(rf"(?:اسمي|اسمه|اسمها|يدعى|تدعى|أدعى|ادعى)\s*:?\s*(?P<pii>{ar_name})"),
        # a title or honorific followed by a capitalised name
        _RegexRecognizer(
            "PERSON",
            [rf"(?<![\p{{L}}])(?:{_TITLES_LATIN})\.?\s+(?P<pii>{cap_name})"],
            0.85,
            name="TitleName",
        ),
        _CueNameRecognizer(
            rf"(?<![\p{{Arabic}}])(?:د\.\s*|(?:{_TITLES_AR})\s+)(?P<pii>{ar_name})",
            arabic_title=True,
        ),
        # a relative named after the relation ("my son Karim")
        _RegexRecognizer(
            "PERSON",
            [rf"(?:{_RELATIVES_LATIN}),?\s+(?P<pii>{cap_name})"],
            0.85,
            name="RelativeName",
        ),
        _CueNameRecognizer(
            rf"(?<![\p{{Arabic}}])[{ARABIC_PREFIXES}]?(?:{_RELATIVES_AR})\s+(?P<pii>{ar_name})",
            gazetteer_only=True,
        ),
        # someone who spoke: "Fatou said", "dijo Ana", "قالت فاطمة" (not "We asked")
        _VouchedWordsDropped(
            "PERSON",
            [
                rf"(?P<pii>{cap_name})\s+(?:{_SPEECH_AFTER})\b",
                rf"(?:{_SPEECH_AFTER})\s+(?P<pii>{cap_name})",
            ],
            0.8,
            name="SpeakerName",
        ),
        _CueNameRecognizer(rf"(?:{_SPEECH_AR})\s+(?P<pii>{ar_name})", not_definite=True),
        _CapitalisedWordRecognizer(),
        _ArabicGazetteerRecognizer(),
    ]


def _is_stop(word: str) -> bool:
    return word.lower() in _stop_words() or word.lower().strip("'’") in _stop_words()


@functools.cache
def _arabic_names() -> tuple[frozenset[str], frozenset[str]]:
    ambiguous = frozenset(AMBIGUOUS_ARABIC_NAMES.split())
    return frozenset(ARABIC_NAMES.split()) - ambiguous, ambiguous


def _arabic_name(word: str, ambiguous_too: bool) -> bool:
    names, ambiguous = _arabic_names()
    forms = {word} | ({word[1:]} if word[:1] in ARABIC_PREFIXES and len(word) > 3 else set())
    return any(f in names or (ambiguous_too and f in ambiguous) for f in forms)


class _VouchedWordsDropped(_RegexRecognizer):
    """A capitalised span after or before a cue, unless every word of it is vouched for (a stop
    word, a month, a word of KnowDo's seeds: "We asked", "Nurse said")."""

    def analyze(self, text, entities, nlp_artifacts=None):
        allowed = _allowed_words()
        return [
            r
            for r in super().analyze(text, entities, nlp_artifacts)
            if not all(w.lower().strip("'’") in allowed for w in text[r.start : r.end].split())
        ]


class _CueNameRecognizer(_RegexRecognizer):
    """A name after a cue; the span is trimmed at the first stop word (never masks 'and I')."""

    def __init__(
        self,
        pattern: str,
        *,
        arabic_title: bool = False,
        gazetteer_only: bool = False,
        not_definite: bool = False,
    ):
        self.arabic_title = arabic_title
        self.gazetteer_only = gazetteer_only
        self.not_definite = not_definite
        super().__init__("PERSON", [pattern], 0.9, name="CueName")

    def analyze(self, text, entities, nlp_artifacts=None):
        results = []
        for result in super().analyze(text, entities, nlp_artifacts):
            words = list(regex.finditer(r"\S+", text[result.start : result.end]))
            kept = []
            for i, w in enumerate(words):
                token = w.group().strip(".,;:!?؟،")
                if not token or MASK.fullmatch(token) or token.startswith("["):
                    break
                if _is_stop(token):
                    break
                if self.not_definite and token.startswith("ال"):
                    break
                if self.gazetteer_only and not _arabic_name(token, ambiguous_too=True):
                    break
                joined = i > 0 and words[i - 1].group() in ARABIC_NAME_JOINERS
                if joined:
                    kept.append(w)
                    continue
                if (
                    i > 0
                    and self.arabic_title
                    and token.startswith("ال")
                    and not _arabic_name(token, ambiguous_too=False)
                ):
                    break
                kept.append(w)
            if kept:
                start = result.start + kept[0].start()
                end = result.start + kept[-1].start() + len(kept[-1].group().rstrip(".,;:!?؟،"))
                results.append(RecognizerResult("PERSON", start, end, result.score))
        return results


_SENTENCE_START = regex.compile(r"(?:^|[.!?¡¿:;\"«»“”()\n]|\s[-–—])\s*$")
_CAPITALISED = regex.compile(
    rf"(?<![\p{{L}}\p{{M}}\d\[])(?:{_CAP})(?:\s+(?:(?:{_words(NAME_PARTICLES)})\s+)?{_CAP})*"
)


class _CapitalisedWordRecognizer(EntityRecognizer):
    """Fail safe for Latin scripts: a capitalised word nobody vouches for is taken for a name.

    Vouched for: a stop word (English, French, Spanish), a month, a day, a language or one of
    COMMON_CAPITALISED, a word or phrase of KnowDo's seeds (places, countries, interventions,
    ARCs), an acronym of up to four capitals (NHS, GP, ARC). "I" is a stop word.
    """

    def __init__(self):
        super().__init__(
            supported_entities=["PERSON"], supported_language=LANGUAGE, name="CapitalisedWord"
        )

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        protected = [m.span() for m in _allowed_phrases().finditer(text)]
        allowed = _allowed_words()
        results = []
        for m in _CAPITALISED.finditer(text):
            names = []
            for w in regex.finditer(r"\S+", m.group()):
                token = w.group()
                start, end = m.start() + w.start(), m.start() + w.end()
                if any(a <= start and end <= b for a, b in protected):
                    continue
                bare = token.strip("'’-")
                head, apostrophe, rest = regex.sub("’", "'", bare).partition("'")
                if apostrophe and head.lower() in FRENCH_ELISIONS and not rest[:1].isupper():
                    continue  # J'ai, L'infirmière, D'abord: an elided word, not a name
                if bare.lower() in allowed or (bare.isupper() and len(bare) <= 4):
                    continue
                if "-" in bare and all(p.lower() in allowed for p in bare.split("-") if p):
                    continue
                names.append((start, end))
            if names:
                results.append(RecognizerResult("PERSON", names[0][0], names[-1][1], 0.5))
        return results


class _ArabicGazetteerRecognizer(EntityRecognizer):
    """A common Arabic given name anywhere in a text (not the ambiguous ones: they need a cue)."""

    def __init__(self):
        super().__init__(
            supported_entities=["PERSON"], supported_language=LANGUAGE, name="ArabicName"
        )

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        results = []
        for m in regex.finditer(r"\p{Arabic}+(?:\s+\p{Arabic}+)?", text, overlapped=True):
            first, _, second = m.group().partition(" ")
            if first in ARABIC_NAME_JOINERS and second and first == "عبد":
                results.append(RecognizerResult("PERSON", m.start(), m.end(), 0.6))
            elif _arabic_name(first, ambiguous_too=False):
                results.append(RecognizerResult("PERSON", m.start(), m.start() + len(first), 0.6))
        return results


# --- the engine -------------------------------------------------------------------------------


@functools.cache
def _analyzer() -> AnalyzerEngine:
    import spacy

    engine = SpacyNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "blank:xx"}])
    # a blank pipeline: tokenizer only. Presidio's load() would try to download a model by name;
    # the pipeline is set here instead, and no NER recogniser is registered.
    engine.nlp = {LANGUAGE: spacy.blank(LANGUAGE)}
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for recogniser in (
        *_contact_recognisers(),
        *_identifier_recognisers(),
        *_date_recognisers(),
        *_address_recognisers(),
        *_name_recognisers(),
    ):
        registry.add_recognizer(recogniser)
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=engine,
        supported_languages=[LANGUAGE],
        default_score_threshold=SCORE_THRESHOLD,
    )


@functools.cache
def _anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()


def find_pii(text: str) -> list[RecognizerResult]:
    """Every piece of personal data found in `text` (masks already in it are not)."""
    if not text or not text.strip():
        return []
    results = _analyzer().analyze(text=text, language=LANGUAGE)
    masks = [m.span() for m in MASK.finditer(text)]
    return [r for r in results if not any(a <= r.start and r.end <= b for a, b in masks)]


def _merged(results: list[RecognizerResult]) -> list[tuple[int, int, str]]:
    """Overlapping findings become one span (fail safe: the union), labelled by the best score."""
    spans: list[list] = []
    for r in sorted(results, key=lambda r: (r.start, -r.end)):
        if spans and r.start < spans[-1][1]:
            last = spans[-1]
            last[1] = max(last[1], r.end)
            if r.score > last[3]:
                last[2], last[3] = r.entity_type, r.score
        else:
            spans.append([r.start, r.end, r.entity_type, r.score])
    return [(s, e, t) for s, e, t, _ in spans]


def scrub(text: str | None) -> str | None:
    """`text` with every piece of personal data replaced by its mask ([NAME], [PHONE], ...).

    Idempotent: scrubbing a scrubbed text changes nothing.
    """
    if text is None:
        return None
    spans = _merged(find_pii(text))
    if not spans:
        return text
    results = [RecognizerResult(entity, s, e, 1.0) for s, e, entity in spans]
    operators = {
        entity: OperatorConfig("replace", {"new_value": mask}) for entity, mask in MASKS.items()
    }
    operators["DEFAULT"] = OperatorConfig("replace", {"new_value": "[PII]"})
    return _anonymizer().anonymize(text=text, analyzer_results=results, operators=operators).text


def residual_pii(text: str | None) -> list[str]:
    """What the scrubber would still mask in `text`, as 'ENTITY: text' (empty when clean)."""
    if not text:
        return []
    return [f"{entity}: {text[s:e]}" for s, e, entity in _merged(find_pii(text))]


# High-precision patterns in PostgreSQL's regular-expression syntax (ARE), for a GX expectation
# run in the warehouse ("no quote in the mart matches any of them"). The full check is
# residual_pii(); these are the subset that can run as SQL without false alarms on masked text.
RESIDUAL_SQL_PATTERNS = {
    "email": r"[[:alnum:]._%+-]+@[[:alnum:]-]+(\.[[:alnum:]-]+)+",
    "uk_postcode": r"(?i)\m[A-PR-UWYZ][A-HK-Y]?[0-9][0-9A-Z]?\s?[0-9][ABD-HJLNP-UW-Z]{2}\M",
    "long_number": r"\+?[0-9٠-٩]([ .-]?[0-9٠-٩]){6,}",
    "numeric_date": r"\m[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4}\M",
}
