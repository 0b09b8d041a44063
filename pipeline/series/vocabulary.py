"""Description vocabularies: regular expressions over normalised descriptions.

Descriptions are lower-cased and their separators (``_ - . , : ( ) =``) turned
into spaces (:func:`pipeline.series.conditions.normalise_description`) before
these patterns are searched. Sources of the conventions: see
:mod:`pipeline.series.rules` and ``tests/data/series_headers/cases.py``.
"""

from __future__ import annotations

LOCALIZER_WORDS = (
    r"locali[sz]er|\bloc\b|\d ?pl(?:ane)? ?loc|\b3 ?pl(?:ane)?\b|scout|survey|surview"
    r"|tri ?pilot|\bpilot|aahead|aascout|scanogram|locator|\bplan(?:ning|scan)?\b|smartexam|\bmst\b"
)
#: ImageType values of phase images (Siemens P, GE PHASE, Philips PHASE MAP).
PHASE_TOKENS = ("P", "PHASE", "PHASE MAP")
PHASE_WORDS = r"\bpha\b|\bphase\b|\bpha images|\bphase map|\bfilt phase"
SWI_WORDS = (
    r"\bswi\w*|\bswan\b|\bswip\b|venbold|ven bold|venous bold|susc\w*|\bmag images"
    r"|mip images sw|\bmin ?ip\b|\bmnip\b|\bsw mip\b|\bfsbb\b|\bswi ?mip"
)
PROJECTION_WORDS = r"\bmip\b|\bmaxip\b|\bmip\w* (?:tra|cor|sag|ax)|\bvr\b|rendering"
ANGIO_WORDS = (
    r"\btof\b|\w*angio\w*|\bmra\b|\bmrv\b|venogra\w*|\bpca\b|phase contrast|inhance"
    r"|\bqflow\b|\bflow\b|\bcine\b|time ?slip|\btrance\b|\bfbi\b|\bcemra\b|\bfl3d\b tof"
)
PERFUSION_WORDS = (
    r"perf\w*|\bdsc\b|\bdce\b|\bpwi\b|\br?cbv\b|\br?cbf\b|\bmtt\b|\bttp\b|\btmax\b"
    r"|\bp?c?asl\b|\bpasl\b|\bpcasl\b|\beasl\b|\btgse\b|\bbolus\b|\bdyn\w*|\btwist\b|\btricks\b"
)
FUNCTIONAL_WORDS = r"\bbold\b|fmri|\brest\b|resting|rsfmri|\btask\b|sbref|\bmoco\w*|\bfunc\w*"
SPECTRO_WORDS = r"\bsvs\b|\bcsi\b|spectro\w*|\bmrs\b|\bpress\b|\bsteam\b|\bnaa\b|\bsemi ?laser\b"
CALIBRATION_WORDS = (
    r"field ?map\w*|\w*fieldmap\w*|\bfmap\b|\bb[01] ?map\b|asset ?cal\w*|calibrat\w*|\bcal\b"
    r"|senseref\w*|sense ref|coil ?survey|\bref ?scan\b|\bref head\b|\bprescan\b|\bshim\w*"
    r"|\bnoise\b|\bpure\b"
)
DIFFUSION_MAP_WORDS = (
    r"\bfa\b|\bcol ?fa\b|colou?r ?fa|fractional|\btensor\b|\beadc\b|\bexp\w* ?adc\b"
    r"|exponential|\bmd\b|\brd\b|\bad\b|\bcfa\b|\bdec\b|\bisotropic ?fa\b"
)
RELAXOMETRY_WORDS = (
    r"\bt[12]\*? ?map\w*|\bt[12] ?mapping|\bmapit\b|\bqmap\b|\bmdme\b|\bmagic\b|\bsynthetic\b"
    r"|\br2\*|\br2star\b|relaxometry|\bmyelin\b|\bqsm\b|\bmwf\b|\bmp2rage\w* t1\b"
    r"|\bt1 images\b"
)
DTI_WORDS = (
    r"\bdti\b|\bdmri\b|\bhardi\b|\bmddw\b|\bdir ?(?:[6-9]|\d{2,3})\b|\b(?:[6-9]|\d{2,3}) ?dir\w*"
    r"|\bnoddi\b|multi ?shell|\bmsdwi\b|\btractograph\w*|\bfiber ?track\w*|\bdsi\b"
)
ADC_WORDS = r"\badc\b|apparent diff\w*|\bdadc\b|\bavdc\b"
DWI_WORDS = (
    r"\bdwi\w*|\bdw\b|\bdiff\w*|\bdif\w*|\btrace\w*|\bb ?\d{3,4}\b|\b\d{3,4} ?b\b|\bb\d{3,4}"
    r"|\bresolve\b|readout ?segmented|\brs ?epi\b|\bdwibs\b|\biso ?dwi\b|\bep2d diff"
)
PD_WORDS = r"\bpd\w*|proton density|dual ?echo|\bdual\b|double ?echo|\bpdw\b|\bde\b"
T2STAR_WORDS = (
    r"t2\*|t2 ?star|\bt2 ?ffe\b|\bffe t2\b|\bhemo\w*|\bhaemo\w*|\bgre\b|\bmerge\b|\bmedic\b"
    r"|\bt2 ?gre\b|\bgre t2\b|\bfe t2\b|\bt2 ?fe\b"
)
DIR_WORDS = r"\bdir\b(?! ?\d)|double ?ir\b|double ?inversion|\bdir ?space\b"
STIR_WORDS = r"\bstir\b|\bfaststir\b"
SSFP_WORDS = r"fiesta|\bciss\b|true ?fisp|\btrufi\b|\bb ?ffe\b|balanced|\bcise\b"
FLAIR_WORDS = (
    r"fl(?:a|ai|ia)i?r|flari|falir|fliar|\bflar\b|dark ?fluid|darkfluid|dark fl\w*|\btirm\b"
    r"|fast ?flair|\bspcir\b"
)
T1_FLAIR_WORDS = r"t1\w* ?fl(?:a|ai|ia)i?r|fl(?:a|ai|ia)i?r ?t1\b|\bt1 ?fl\b|\bt1 ?tirm\b"
T2_WORDS = (
    r"(?:\b(?:ax|sag|cor|s)?t2(?!\*)(?:w|wi)?\b(?! ?star)|\bt2(?:w|wi)?(?=[a-z])(?!star))"
    r"|\btse\b|\bfse\b|\bhaste\b|\bssfse\b|\bspace\b|\bcube\b|\bvista\b|\bpropeller\b"
    r"|\bblade\b|\bmultivane\b|\bfrfse\b|\bt2 ?tse\b"
)
T1_WORDS = (
    r"\b(?:ax|sag|cor|s)?t1(?:w|wi)?\b|\bt1(?:w|wi)?(?=[a-z])|mp ?rage|\btfl\b|\bspgr\b|fspgr"
    r"|\bbravo\b|\b3d ?tfe\b|\btfe\b|\bvibe\b|\bflash\b|\bt1 ?ffe\b|ir ?f?spgr|\blava\b"
    r"|\bthrive\b|\bquick ?3d\b|\bfl3d\b|\bmp2rage\b|\bmprage\w*|\bsag t1\w*|\bt1\w+"
)
#: Description evidence that a T1 series was acquired after contrast injection.
CONTRAST_WORDS = (
    r"\+ ?c\b|\bc ?\+|\+ ?gd\w*|\+ ?gad\w*|\+ ?ce\b|\bpost\b(?! ?op)|\bpost(?:contrast|con|gd"
    r"|gad\w*)?\b|\bpost ?(?:contr\w*|gd|gad\w*|km)|\bgad\w*|\bgd\b|\bce\b|contrast|\bkm\b"
    r"|\+ ?km\b|\bmit ?km\b|\bcontr\b|\bgado\w*|\bdotarem\b|\bgadavist\b|\bmultihance\b"
    r"|\bclariscan\b|\bprohance\b|\bmagnevist\b|\bomniscan\b|\bwith contrast|\bw/ ?(?:gd|gad|c)\b"
    r"|\bc\+"
)
#: Description evidence that a T1 series is pre-contrast.
PRECONTRAST_WORDS = (
    r"\bpre\b|\bpre ?contr\w*|\bprecon\w*|\bpre ?gd\b|\bpre ?gad\w*|non ?contrast|\bw/o\b"
    r"|without|\bnativ\w*|\bno contrast|\bplain\b|\bunenhanced\b|\bnon ?enh\w*|\bohne km\b"
    r"|\bnc\b"
)
