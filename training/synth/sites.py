"""Scanner/site profiles: how three vendors name, parameterise and tag their series.

Each site is one scanner at one hospital. Sites differ the way real ones do:
series descriptions and protocol names (Siemens ``t2_tse_tra``, GE ``Ax T2 FLAIR``,
Philips ``T2W_TSE``), ScanningSequence / SequenceVariant / ScanOptions /
SequenceName conventions, ImageType values, where the b-value is stored (standard
DiffusionBValue (0018,9087), the vendor private tag — Siemens (0019,100C), GE
(0043,1039), Philips (2001,1003) — or only the description), whether
ContrastBolusAgent is filled, field strength, resolution, noise and intensity
scaling. Training on some sites and testing on another is an external test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dicom_node.errors import ConfigError
from training.synth.contrast import SequenceParams


@dataclass(frozen=True)
class Protocol:
    """One way a site acquires one sequence (the header values come from here).

    Attributes:
        sequence: truth class (one of SEQUENCES).
        description: SeriesDescription.
        protocol_name: ProtocolName.
        params: timing for the signal model (TR/TE/TI/flip/b/contrast).
        scanning_sequence, sequence_variant, scan_options: (0018,0020/21/22) values.
        acq_type: MRAcquisitionType "2D" or "3D".
        sequence_name: (0018,0024) SequenceName ("" when the vendor leaves it empty).
        image_type: ImageType values.
        plane: "AX", "SAG" or "COR".
        fov: (rows, columns) field of view in mm.
        acq_matrix: acquired (frequency, phase) matrix.
        recon: reconstructed (rows, columns).
        n_slices: slices (full size).
        thickness, gap: mm.
        etl: EchoTrainLength.
        snr: signal-to-noise ratio of brain tissue.
        bandwidth: PixelBandwidth (Hz/pixel).
    """

    sequence: str
    description: str
    protocol_name: str
    params: SequenceParams
    scanning_sequence: tuple[str, ...]
    sequence_variant: tuple[str, ...]
    scan_options: tuple[str, ...]
    acq_type: str
    sequence_name: str
    image_type: tuple[str, ...]
    plane: str
    fov: tuple[float, float]
    acq_matrix: tuple[int, int]
    recon: tuple[int, int]
    n_slices: int
    thickness: float
    gap: float
    etl: int = 1
    snr: float = 30.0
    bandwidth: float = 200.0


@dataclass(frozen=True)
class DiffusionStyle:
    """How a site writes diffusion series.

    Attributes:
        b0_name, trace_name: SequenceName for b=0 and b=1000 images ("" to omit).
        b0_image_type, trace_image_type, adc_image_type: ImageType values.
        adc_description: SeriesDescription of the ADC map (``{desc}`` = DWI description).
        standard_b_tag: write DiffusionBValue (0018,9087).
        private_b: vendor private b-value tag: "siemens", "ge", "philips" or "".
        combined_prob: probability that b0 and b1000 share one series.
        separate_descriptions: SeriesDescription of b0 and b1000 series when separate.
    """

    b0_name: str
    trace_name: str
    b0_image_type: tuple[str, ...]
    trace_image_type: tuple[str, ...]
    adc_image_type: tuple[str, ...]
    adc_description: str
    standard_b_tag: bool
    private_b: str
    combined_prob: float
    separate_descriptions: tuple[str, str]


@dataclass(frozen=True)
class SwiStyle:
    """Extra SWI series a site produces besides the magnitude.

    Attributes:
        phase_description, minip_description: "" when not produced.
        phase_image_type, minip_image_type: ImageType values.
    """

    phase_description: str
    minip_description: str
    phase_image_type: tuple[str, ...]
    minip_image_type: tuple[str, ...]


@dataclass(frozen=True)
class Site:
    """One scanner at one hospital.

    Attributes:
        name: site id (used in labels.csv and for train/test splits).
        manufacturer, model, software: General Equipment values.
        field_t: MagneticFieldStrength (T).
        institution, station: InstitutionName, StationName.
        study_descriptions: (without contrast, with contrast) StudyDescription choices.
        body_parts: BodyPartExamined choices ("" = attribute left empty).
        contrast_agent: ContrastBolusAgent values; empty tuple = never filled.
        protocols: truth sequence -> candidate protocols.
        diffusion, swi: vendor styles.
        intensity_max: range of the 99.5th percentile of stored pixel values.
        implicit_vr: write Implicit VR Little Endian (else Explicit).
        sequence_prob: probability that each optional sequence is acquired.
    """

    name: str
    manufacturer: str
    model: str
    software: str
    field_t: float
    institution: str
    station: str
    study_descriptions: tuple[tuple[str, ...], tuple[str, ...]]
    body_parts: tuple[str, ...]
    contrast_agent: tuple[str, ...]
    protocols: dict[str, tuple[Protocol, ...]]
    diffusion: DiffusionStyle
    swi: SwiStyle
    intensity_max: tuple[float, float]
    implicit_vr: bool
    sequence_prob: dict[str, float] = field(default_factory=dict)


def _p(
    kind: str, tr: float, te: float, ti: float = 0.0, flip: float = 90.0, **kw: object
) -> SequenceParams:
    return SequenceParams(kind, tr, te, ti, flip, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ Siemens 3 T

_SIEMENS_T1 = Protocol(
    "T1",
    "t1_mprage_sag_p2_iso",
    "t1_mprage_sag_p2_iso",
    _p("T1GRE3D", 2300, 2.32, 900, 8),
    ("GR", "IR"),
    ("SK", "SP", "MP"),
    ("IR",),
    "3D",
    "*tfl3d1_16ns",
    ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
    "SAG",
    (256, 256),
    (256, 256),
    (256, 256),
    176,
    1.0,
    0.0,
    1,
    35.0,
    200,
)
_SIEMENS_T1_SE = Protocol(
    "T1",
    "t1_se_tra",
    "t1_se_tra",
    _p("SE", 550, 8.9),
    ("SE",),
    ("SP",),
    ("SAT1",),
    "2D",
    "*se2d1",
    ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
    "AX",
    (220, 220),
    (256, 205),
    (256, 256),
    25,
    5.0,
    1.0,
    1,
    28.0,
    150,
)
SIEMENS_A = Site(
    name="siemens_a",
    manufacturer="SIEMENS",
    model="Prisma",
    software="syngo MR XA30",
    field_t=3.0,
    institution="Synthetic General Hospital",
    station="SYNMR01",
    study_descriptions=(
        ("MRI HEAD", "MR Kopf^Routine", "MRI BRAIN"),
        ("MRI HEAD W/WO CONTRAST", "MR Kopf^Routine KM", "MRI BRAIN WITH CONTRAST"),
    ),
    body_parts=("HEAD", "HEAD", "BRAIN", ""),
    contrast_agent=("Gadovist", "GADOVIST 1.0", "Dotarem"),
    protocols={
        "LOCALIZER": (
            Protocol(
                "LOCALIZER",
                "localizer",
                "localizer",
                _p("GRE", 8.6, 4.0, flip=20),
                ("GR",),
                ("SP",),
                ("",),
                "2D",
                "*fl2d1",
                ("ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"),
                "AX",
                (250, 250),
                (256, 128),
                (256, 256),
                3,
                7.0,
                3.0,
                1,
                18.0,
                320,
            ),
            Protocol(
                "LOCALIZER",
                "AAHead_Scout_64ch-head-coil",
                "AAHead_Scout_64ch-head-coil",
                _p("GRE", 3.15, 1.37, flip=8),
                ("GR",),
                ("SP",),
                ("",),
                "3D",
                "*fl3d1_ns",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "AX",
                (260, 260),
                (160, 160),
                (160, 160),
                3,
                1.6,
                0.0,
                1,
                15.0,
                490,
            ),
        ),
        "T1": (_SIEMENS_T1, _SIEMENS_T1, _SIEMENS_T1_SE),
        "T1C": (
            Protocol(
                "T1C",
                "t1_mprage_sag_p2_iso_post",
                "t1_mprage_sag_p2_iso_post",
                _p("T1GRE3D", 2300, 2.32, 900, 8, contrast=True),
                ("GR", "IR"),
                ("SK", "SP", "MP"),
                ("IR",),
                "3D",
                "*tfl3d1_16ns",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "SAG",
                (256, 256),
                (256, 256),
                (256, 256),
                176,
                1.0,
                0.0,
                1,
                35.0,
                200,
            ),
            Protocol(
                "T1C",
                "t1_se_tra_KM",
                "t1_se_tra_KM",
                _p("SE", 550, 8.9, contrast=True),
                ("SE",),
                ("SP",),
                ("SAT1",),
                "2D",
                "*se2d1",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "AX",
                (220, 220),
                (256, 205),
                (256, 256),
                25,
                5.0,
                1.0,
                1,
                28.0,
                150,
            ),
        ),
        "T2": (
            Protocol(
                "T2",
                "t2_tse_tra",
                "t2_tse_tra",
                _p("SE", 6000, 99),
                ("SE",),
                ("SK", "SP", "OSP"),
                ("PFP",),
                "2D",
                "*tse2d1_15",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "AX",
                (220, 200),
                (384, 310),
                (512, 464),
                27,
                4.0,
                1.2,
                15,
                32.0,
                190,
            ),
            Protocol(
                "T2",
                "t2_tse_tra_p2",
                "t2_tse_tra_p2",
                _p("SE", 5200, 96),
                ("SE",),
                ("SK", "SP", "OSP"),
                ("PFP",),
                "2D",
                "*tse2d1_18",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "AX",
                (230, 230),
                (320, 256),
                (320, 320),
                25,
                5.0,
                1.0,
                18,
                30.0,
                220,
            ),
        ),
        "FLAIR": (
            Protocol(
                "FLAIR",
                "t2_tirm_tra_dark-fluid",
                "t2_tirm_tra_dark-fluid",
                _p("IR", 9000, 81, 2500, 150),
                ("SE", "IR"),
                ("SK", "SP", "MP", "OSP"),
                ("IR", "PFP"),
                "2D",
                "*tir2d1_21",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "AX",
                (220, 200),
                (320, 260),
                (320, 290),
                27,
                4.0,
                1.2,
                21,
                24.0,
                260,
            ),
            Protocol(
                "FLAIR",
                "t2_space_dark-fluid_sag_p2_iso",
                "t2_space_dark-fluid_sag_p2_iso",
                _p("IR", 5000, 387, 1800, 120, te_equivalent=130),
                ("SE", "IR"),
                ("SK", "SP", "MP"),
                ("IR",),
                "3D",
                "*spcir_278ns",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                "SAG",
                (250, 250),
                (256, 256),
                (256, 256),
                160,
                1.0,
                0.0,
                278,
                22.0,
                750,
            ),
        ),
        "DWI": (
            Protocol(
                "DWI",
                "ep2d_diff_3scan_trace_p2",
                "ep2d_diff_3scan_trace_p2",
                _p("DWI", 5600, 89, b_value=1000),
                ("EP",),
                ("SK", "SP"),
                ("PFP", "FS"),
                "2D",
                "*ep_b1000t",
                ("ORIGINAL", "PRIMARY", "DIFFUSION", "TRACEW", "ND", "NORM"),
                "AX",
                (230, 230),
                (160, 160),
                (160, 160),
                27,
                5.0,
                1.5,
                1,
                14.0,
                1330,
            ),
        ),
        "SWI": (
            Protocol(
                "SWI",
                "t2_swi_tra_p2_1.5mm",
                "t2_swi_tra_p2_1.5mm",
                _p("GRE", 27, 20, flip=15),
                ("GR",),
                ("SP",),
                ("",),
                "3D",
                "*swi3d1r",
                ("ORIGINAL", "PRIMARY", "M", "SWI", "NORM", "DIS2D"),
                "AX",
                (220, 192),
                (256, 224),
                (256, 224),
                72,
                1.5,
                0.0,
                1,
                20.0,
                120,
            ),
        ),
    },
    diffusion=DiffusionStyle(
        b0_name="*ep_b0",
        trace_name="*ep_b1000t",
        b0_image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "NORM"),
        trace_image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "TRACEW", "ND", "NORM"),
        adc_image_type=("DERIVED", "PRIMARY", "DIFFUSION", "ADC", "ND", "NORM"),
        adc_description="{desc}_ADC",
        standard_b_tag=False,
        private_b="siemens",
        combined_prob=0.85,
        separate_descriptions=("{desc}_b0", "{desc}_TRACEW"),
    ),
    swi=SwiStyle(
        phase_description="Pha_Images",
        minip_description="mIP_Images(SW)",
        phase_image_type=("ORIGINAL", "PRIMARY", "P", "SWI", "ND"),
        minip_image_type=("DERIVED", "PRIMARY", "MNIP", "SWI", "NORM"),
    ),
    intensity_max=(700.0, 1600.0),
    implicit_vr=True,
    sequence_prob={"T1": 0.93, "T2": 0.97, "FLAIR": 0.95, "DWI": 0.96, "SWI": 0.75, "T1C": 0.55},
)

# ------------------------------------------------------------------------------ GE 1.5 T

_GE_IT = ("ORIGINAL", "PRIMARY", "OTHER")
GE_B = Site(
    name="ge_b",
    manufacturer="GE MEDICAL SYSTEMS",
    model="SIGNA Artist",
    software="29\\LX\\MR Software release:RX29.1_R02_2134.a",
    field_t=1.5,
    institution="SYNTHETIC UNIVERSITY MEDICAL CENTER",
    station="SYNGE15",
    study_descriptions=(
        ("MR BRAIN WO CONTRAST", "MRI BRAIN W/O", "BRAIN"),
        ("MR BRAIN W/WO CONTRAST", "MRI BRAIN W/WO", "BRAIN W+WO"),
    ),
    body_parts=("BRAIN", "HEAD", ""),
    contrast_agent=(),
    protocols={
        "LOCALIZER": (
            Protocol(
                "LOCALIZER",
                "3Plane Loc SSFSE",
                "3Plane Loc SSFSE",
                _p("SE", 1300, 80),
                ("SE",),
                ("SK",),
                ("FAST_GEMS", "SEQ_GEMS", "SS_GEMS"),
                "2D",
                "ssfse",
                _GE_IT,
                "AX",
                (260, 260),
                (256, 128),
                (256, 256),
                3,
                8.0,
                4.0,
                1,
                14.0,
                390,
            ),
            Protocol(
                "LOCALIZER",
                "3-pl T2* FGRE S",
                "3-pl T2* FGRE S",
                _p("GRE", 5.4, 1.8, flip=20),
                ("GR",),
                ("SS", "SP"),
                ("FAST_GEMS",),
                "2D",
                "fgre",
                _GE_IT,
                "AX",
                (260, 260),
                (256, 128),
                (256, 256),
                3,
                8.0,
                4.0,
                1,
                16.0,
                244,
            ),
        ),
        "T1": (
            Protocol(
                "T1",
                "Ax T1 FLAIR",
                "Ax T1 FLAIR",
                _p("IR", 2200, 24, 860),
                ("SE", "IR"),
                ("SK", "SP", "MP"),
                ("FAST_GEMS", "IR_GEMS", "FILTERED_GEMS"),
                "2D",
                "fse-ir",
                _GE_IT,
                "AX",
                (240, 240),
                (320, 224),
                (512, 512),
                22,
                5.0,
                1.0,
                7,
                26.0,
                244,
            ),
            Protocol(
                "T1",
                "Sag T1 3D BRAVO",
                "Sag T1 3D BRAVO",
                _p("T1GRE3D", 8.2, 3.2, 450, 12),
                ("GR", "IR"),
                ("SS", "SK"),
                ("FAST_GEMS", "EDR_GEMS", "IR_GEMS", "SEQ_GEMS"),
                "3D",
                "efgre3d",
                _GE_IT,
                "SAG",
                (256, 256),
                (256, 256),
                (256, 256),
                160,
                1.2,
                -0.0,
                1,
                26.0,
                244,
            ),
        ),
        "T1C": (
            Protocol(
                "T1C",
                "Sag T1 3D BRAVO +C",
                "Sag T1 3D BRAVO +C",
                _p("T1GRE3D", 8.2, 3.2, 450, 12, contrast=True),
                ("GR", "IR"),
                ("SS", "SK"),
                ("FAST_GEMS", "EDR_GEMS", "IR_GEMS", "SEQ_GEMS"),
                "3D",
                "efgre3d",
                _GE_IT,
                "SAG",
                (256, 256),
                (256, 256),
                (256, 256),
                160,
                1.2,
                0.0,
                1,
                26.0,
                244,
            ),
            Protocol(
                "T1C",
                "Ax T1 FLAIR +C",
                "Ax T1 FLAIR +C",
                _p("IR", 2200, 24, 860, contrast=True),
                ("SE", "IR"),
                ("SK", "SP", "MP"),
                ("FAST_GEMS", "IR_GEMS", "FILTERED_GEMS"),
                "2D",
                "fse-ir",
                _GE_IT,
                "AX",
                (240, 240),
                (320, 224),
                (512, 512),
                22,
                5.0,
                1.0,
                7,
                26.0,
                244,
            ),
            Protocol(
                "T1C",
                "Cor T1 +C",
                "Cor T1 +C",
                _p("SE", 500, 12, contrast=True),
                ("SE",),
                ("SP",),
                ("FAST_GEMS", "FILTERED_GEMS"),
                "2D",
                "fse",
                _GE_IT,
                "COR",
                (240, 240),
                (320, 224),
                (512, 512),
                24,
                5.0,
                1.0,
                3,
                24.0,
                244,
            ),
        ),
        "T2": (
            Protocol(
                "T2",
                "Ax T2 FSE",
                "Ax T2 FSE",
                _p("SE", 4800, 102),
                ("SE",),
                ("SK",),
                ("FAST_GEMS", "EDR_GEMS", "TRF_GEMS", "FILTERED_GEMS"),
                "2D",
                "fse-xl",
                _GE_IT,
                "AX",
                (240, 240),
                (416, 256),
                (512, 512),
                22,
                5.0,
                1.0,
                16,
                26.0,
                244,
            ),
            Protocol(
                "T2",
                "Ax T2 PROPELLER",
                "Ax T2 PROPELLER",
                _p("SE", 6000, 110),
                ("SE",),
                ("SK",),
                ("FAST_GEMS", "EDR_GEMS", "FILTERED_GEMS"),
                "2D",
                "prop",
                _GE_IT,
                "AX",
                (240, 240),
                (320, 320),
                (512, 512),
                22,
                5.0,
                1.0,
                24,
                24.0,
                390,
            ),
        ),
        "FLAIR": (
            Protocol(
                "FLAIR",
                "Ax T2 FLAIR",
                "Ax T2 FLAIR",
                _p("IR", 9000, 120, 2250),
                ("SE", "IR"),
                ("SK", "MP"),
                ("FAST_GEMS", "EDR_GEMS", "IR_GEMS", "FILTERED_GEMS"),
                "2D",
                "fse-ir",
                _GE_IT,
                "AX",
                (240, 240),
                (288, 224),
                (512, 512),
                22,
                5.0,
                1.0,
                12,
                18.0,
                244,
            ),
            Protocol(
                "FLAIR",
                "Cor T2 FLAIR",
                "Cor T2 FLAIR",
                _p("IR", 9000, 120, 2250),
                ("SE", "IR"),
                ("SK", "MP"),
                ("FAST_GEMS", "EDR_GEMS", "IR_GEMS", "FILTERED_GEMS"),
                "2D",
                "fse-ir",
                _GE_IT,
                "COR",
                (240, 240),
                (288, 224),
                (512, 512),
                24,
                5.0,
                1.0,
                12,
                18.0,
                244,
            ),
        ),
        "DWI": (
            Protocol(
                "DWI",
                "Ax DWI",
                "Ax DWI",
                _p("DWI", 6000, 78, b_value=1000),
                ("EP",),
                ("SK", "SS"),
                ("EPI_GEMS", "ACC_GEMS", "PFF"),
                "2D",
                "epi",
                _GE_IT,
                "AX",
                (240, 240),
                (128, 128),
                (256, 256),
                22,
                5.0,
                1.0,
                1,
                11.0,
                1953,
            ),
            Protocol(
                "DWI",
                "Ax DWI 1000b",
                "Ax DWI 1000b",
                _p("DWI", 6500, 82, b_value=1000),
                ("EP",),
                ("SK", "SS"),
                ("EPI_GEMS", "ACC_GEMS", "PFF"),
                "2D",
                "epi2",
                _GE_IT,
                "AX",
                (260, 260),
                (128, 160),
                (256, 256),
                24,
                5.0,
                0.5,
                1,
                11.0,
                1953,
            ),
        ),
        "SWI": (
            Protocol(
                "SWI",
                "Ax SWAN",
                "Ax SWAN",
                _p("GRE", 43, 25, flip=15),
                ("GR",),
                ("SS", "SP"),
                ("FAST_GEMS", "EDR_GEMS", "SEQ_GEMS"),
                "3D",
                "swan",
                _GE_IT,
                "AX",
                (240, 240),
                (288, 224),
                (512, 512),
                56,
                2.4,
                -1.2,
                1,
                16.0,
                244,
            ),
        ),
    },
    diffusion=DiffusionStyle(
        b0_name="",
        trace_name="",
        b0_image_type=_GE_IT,
        trace_image_type=_GE_IT,
        adc_image_type=("DERIVED", "PRIMARY", "ADC"),
        adc_description="Apparent Diffusion Coefficient (mm2/s)",
        standard_b_tag=False,
        private_b="ge",
        combined_prob=0.9,
        separate_descriptions=("Ax DWI B0", "Ax DWI 1000"),
    ),
    swi=SwiStyle(
        phase_description="",
        minip_description="Ax SWAN MinIP",
        phase_image_type=(),
        minip_image_type=("DERIVED", "SECONDARY", "REFORMATTED", "MIN IP"),
    ),
    intensity_max=(1500.0, 4000.0),
    implicit_vr=False,
    sequence_prob={"T1": 0.9, "T2": 0.98, "FLAIR": 0.97, "DWI": 0.97, "SWI": 0.5, "T1C": 0.5},
)

# ------------------------------------------------------------------------------ Philips 3 T

PHILIPS_C = Site(
    name="philips_c",
    manufacturer="Philips",
    model="Ingenia",
    software="5.7.1\\5.7.1.2",
    field_t=3.0,
    institution="Synthetic Teaching Hospital",
    station="SYNPHMR3",
    study_descriptions=(
        ("MRI Head", "MR HERSENEN", "MRI HEAD WITHOUT CONTRAST"),
        ("MRI Head with contrast", "MR HERSENEN + GADO", "MRI HEAD WITH AND WITHOUT CONTRAST"),
    ),
    body_parts=("BRAIN", "BRAIN", ""),
    contrast_agent=("Gadoterate", "DOTAREM", "Gd"),
    protocols={
        "LOCALIZER": (
            Protocol(
                "LOCALIZER",
                "SURVEY",
                "SURVEY",
                _p("GRE", 11, 4.6, flip=15),
                ("GR",),
                ("SP",),
                ("",),
                "2D",
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "AX",
                (250, 250),
                (256, 128),
                (256, 256),
                3,
                10.0,
                5.0,
                1,
                15.0,
                260,
            ),
        ),
        "T1": (
            Protocol(
                "T1",
                "T1W_3D_TFE",
                "sT1W_3D_TFE",
                _p("T1GRE3D", 8.1, 3.7, 1000, 8),
                ("GR",),
                ("MP",),
                ("",),
                "3D",
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "SAG",
                (240, 240),
                (240, 240),
                (240, 240),
                170,
                1.0,
                0.0,
                1,
                30.0,
                190,
            ),
            Protocol(
                "T1",
                "T1W_SE",
                "T1W_SE_TRA",
                _p("SE", 600, 10),
                ("SE",),
                ("",),
                ("",),
                "2D",
                "",
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                "AX",
                (230, 230),
                (288, 230),
                (512, 512),
                24,
                5.0,
                1.0,
                1,
                26.0,
                217,
            ),
        ),
        "T1C": (
            Protocol(
                "T1C",
                "T1W_3D_TFE +C",
                "sT1W_3D_TFE_GD",
                _p("T1GRE3D", 8.1, 3.7, 1000, 8, contrast=True),
                ("GR",),
                ("MP",),
                ("",),
                "3D",
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "SAG",
                (240, 240),
                (240, 240),
                (240, 240),
                170,
                1.0,
                0.0,
                1,
                30.0,
                190,
            ),
            Protocol(
                "T1C",
                "T1W_SE_GD",
                "T1W_SE_TRA_GD",
                _p("SE", 600, 10, contrast=True),
                ("SE",),
                ("",),
                ("",),
                "2D",
                "",
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                "AX",
                (230, 230),
                (288, 230),
                (512, 512),
                24,
                5.0,
                1.0,
                1,
                26.0,
                217,
            ),
        ),
        "T2": (
            Protocol(
                "T2",
                "T2W_TSE",
                "T2W_TSE_TRA",
                _p("SE", 3000, 80),
                ("SE",),
                ("SK",),
                ("",),
                "2D",
                "",
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                "AX",
                (230, 183),
                (400, 288),
                (512, 512),
                24,
                4.0,
                1.0,
                15,
                30.0,
                217,
            ),
        ),
        "FLAIR": (
            Protocol(
                "FLAIR",
                "T2W_FLAIR",
                "T2W_FLAIR_TRA",
                _p("IR", 11000, 125, 2800),
                ("SE", "IR"),
                ("SK", "MP"),
                ("",),
                "2D",
                "",
                ("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
                "AX",
                (230, 183),
                (320, 220),
                (512, 512),
                24,
                4.0,
                1.0,
                24,
                20.0,
                185,
            ),
            Protocol(
                "FLAIR",
                "3D_Brain_VIEW_FLAIR",
                "3D_Brain_VIEW_FLAIR_SAG",
                _p("IR", 4800, 320, 1650, te_equivalent=130),
                ("SE", "IR"),
                ("SK", "MP"),
                ("",),
                "3D",
                "",
                ("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
                "SAG",
                (250, 250),
                (224, 224),
                (224, 224),
                150,
                1.12,
                0.0,
                167,
                20.0,
                900,
            ),
        ),
        "DWI": (
            Protocol(
                "DWI",
                "DWI_SENSE",
                "DWI_SENSE",
                _p("DWI", 3800, 90, b_value=1000),
                ("SE", "EP"),
                ("SK",),
                ("FS",),
                "2D",
                "",
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                "AX",
                (230, 230),
                (152, 150),
                (256, 256),
                24,
                5.0,
                1.0,
                1,
                14.0,
                1900,
            ),
        ),
        "SWI": (
            Protocol(
                "SWI",
                "SWIp",
                "SWIp",
                _p("GRE", 31, 7.2, flip=17),
                ("GR",),
                ("SP",),
                ("",),
                "3D",
                "",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                "AX",
                (230, 190),
                (256, 211),
                (320, 320),
                64,
                2.0,
                -1.0,
                1,
                18.0,
                200,
            ),
        ),
    },
    diffusion=DiffusionStyle(
        b0_name="",
        trace_name="",
        b0_image_type=("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
        trace_image_type=("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
        adc_image_type=("DERIVED", "PRIMARY", "ADC_SE", "ADC", "SE"),
        adc_description="dADC",
        standard_b_tag=True,
        private_b="philips",
        combined_prob=0.6,
        separate_descriptions=("DWI_b0", "DWI_SENSE_b1000"),
    ),
    swi=SwiStyle(
        phase_description="",
        minip_description="SWIp_mIP",
        phase_image_type=(),
        minip_image_type=("DERIVED", "PRIMARY", "MINIP", "M_FFE", "M", "FFE"),
    ),
    intensity_max=(300.0, 2500.0),
    implicit_vr=False,
    sequence_prob={"T1": 0.95, "T2": 0.95, "FLAIR": 0.95, "DWI": 0.95, "SWI": 0.6, "T1C": 0.6},
)

SITE_PROFILES: dict[str, Site] = {s.name: s for s in (SIEMENS_A, GE_B, PHILIPS_C)}
SITES: tuple[str, ...] = tuple(SITE_PROFILES)


def get_site(name: str) -> Site:
    """The profile of a site id; raises ConfigError naming the unknown value."""
    try:
        return SITE_PROFILES[name]
    except KeyError:
        raise ConfigError(f"site {name!r} is not one of {', '.join(SITES)}") from None
