"""Real series descriptions from a multi-site, multi-vendor research cohort, description only.

Source: the series-description lists of a public heudiconv heuristic written for
the PPMI (Parkinson's Progression Markers Initiative) data, "Heuristics created
by Vincent for PPMI dataset T1/T2/DTI images" (2022), which groups the
descriptions met across PPMI sites into T1w / T2w / GRE-MT / T2* / PD-T2 /
FLAIR / DTI / DTI-derived / BOLD / unclassified lists.

The class given here is what the description itself says (our own labelling of
each string, not the heuristic's list: that file files some T1 series under its
MT and FLAIR lists). Descriptions that name no contrast at all ("SAG", "COR",
"MR", "TRA", "3D SAG", "Coronal", empty) are left out: no reader could class
them from the text. The test feeds each description with every technical tag
stripped, so only the description fallback of the classifier is at work; it
was added after the rules were written (held-out with respect to the main
table), and its accuracy is printed separately.
"""

from __future__ import annotations

T1 = [
    "MPRAGE 2 ADNI",
    "MPRAGE ADNI",
    "MPRAGE GRAPPA 2",
    "MPRAGE GRAPPA2",
    "MPRAGE GRAPPA2(adni)",
    "MPRAGE w/ GRAPPA",
    "MPRAGE_GRAPPA",
    "MPRAGE_GRAPPA_ADNI",
    "MPRAGE GRAPPA",
    "SAG T1 3D MPRAGE",
    "sag mprage",
    "MPRAGEadni",
    "MPRAGE GRAPPA_ND",
    "MPRAGE T1 SAG",
    "MPRAGE SAG",
    "SAG T1 3DMPRAGE",
    "SAG T1 MPRAGE",
    "SAG 3D T1",
    "SAG MPRAGE GRAPPA2-NEW2016",
    "SAG MPRAGE GRAPPA_ND",
    "Sag MPRAGE GRAPPA",
    "AXIAL T1 3D MPRAGE",
    "sT1W_3D_FFE",
    "sT1W_3D_ISO",
    "sT1W_3D_TFE",
    "sag 3D FSPGR BRAVO straight",
    "SAG T1 3D FSPGR",
    "SAG T1 3D FSPGR 3RD REPEAT",
    "SAG FSPGR BRAVO",
    "SAG SPGR 3D",
    "SAG 3D SPGR",
    "FSPGR 3D SAG",
    "SAG FSPGR 3D",
    "t1_mpr_ns_sag_p2_iso",
    "T1",
    "T1 Repeat",
    "AX T1",
    "axial spgr",
    "T1W_3D_FFE AX",
    "3D SAG T1 MPRAGE",
    "3D SAG T1 MPRAGE_ND",
    "3D T1",
    "3D T1 MPRAGE",
    "3D T1-weighted",
    "Accelerated Sag IR-FSPGR",
    "MPRAGE",
    "MPRAGE - Sag",
    "MPRAGE Phantom GRAPPA2",
    "PPMI_MPRAGE_GRAPPA2",
    "SAG 3D T1 FSPGR",
    "SAG FSPGR 3D VOLUMETRIC T1",
    "T1-weighted, 3D VOLUMETRIC",
    "tra_T1_MPRAGE",
    "3D T1-weighted_ND",
    "3D T1 _weighted",
    "Sagittal 3D Accelerated MPRAGE",
    "MPRAGE Repeat",
    "SAG_3D_MPRAGE",
    "FSPGR_3D_SAG",
    "T1W_3D_FFE_COR",
    "MPRAGE_SENSE2",
    "3D_Sagittal_T1",
    "Accelerated_Sag_IR-FSPGR",
    "SAG_SPGR",
    "AX_3D_FSPGR_straight_brain_lab",
    "rpt_PPMI_MPRAGE_GRAPPA2",
    "SAG_T1_SE",
    "MPRAGE_w__GRAPPA",
    "T1_AXIAL",
    "Ax T1 FLAIR",
    "MPRAGE_64channel_p2",
    "MPRAGE_ASO",
]
T1C = ["AX T1 SE C+", "AX_T1_SE_C+"]
T2 = [
    "t2_tse_tra",
    "t2 cor",
    "T2 COR",
    "T2W_TSE",
    "AX T2",
    "AX T2 AC-PC LINE ENTIRE BRAIN",
    "Ax T2 Fse thin ac-pc",
    "AXIAL FSE T2 FS",
    "T2",
    "*AX FSE T2",
    "AXIAL  T2  FSE",
    "_AX_FSE_T2",
]
FLAIR = [
    "FLAIR_LongTR AX",
    "FLAIR_LongTR SENSE",
    "AX FLAIR",
    "AXIAL FLAIR",
    "FLAIR_longTR",
    "FLAIR AXIAL",
    "ax flair",
    "Cor FLAIR TI_2800ms",
    "FLAIR",
    "AX T2 FLAIR",
    "T2  AXIAL FLAIR",
    "Ax T2 FLAIR  ang to ac-pc",
    "T2W_FLAIR",
    "AX FLAIR T2",
    "AX T2 FLAIR 5/1",
    "t2_tirm_tra_dark-fluid_",
    "t2_tirm_tra_dark-fluid NO BLADE",
    "3D T2  SPC FLAIR C9C1HN007",
    "3D T2 FLAIR",
    "3D T2 FLAIR_ND",
    "3D T2 FLAIR_SAGITAL",
    "3D T2 FLAIR_ti1650",
    "3D_Brain_VIEW_FLAIR_SAG",
    "3D_T2_FLAIR_SAG INVICCRO T2 FLAIR",
    "SAG 3D FLAIR",
    "SAG CUBE FLAIR",
    "Sag 3D T2 FLAIR",
]
DWI = ["DTI_gated_TRACEW", "DTI Sequence_TRACEW", "DTI_TRACEW", "DTI_gated AC-PC LINE_TRACEW"]
ADC = ["DTI_gated_ADC", "DTI Sequence_ADC", "DTI_ADC"]
LOCALIZER = ["localizer", "3_plane", "SURVEY", "3_PLANE_LOC", "MIDLINE_SAG_LOC", " 3-pl_T2__FGRE"]
OTHER = [
    # magnetisation transfer / neuromelanin GRE
    "2D GRE - MT",
    "2D GRE MT",
    "2D GRE-MT",
    "2D GRE-NM",
    "AX GRE -MT",
    "AXIAL 2D GRE-MT",
    "2D GRE MT MTC-NO",
    "NM-MT",
    "AX_T2_GRE_MT",
    # T2*
    "AXIAL_T2_STAR",
    # PD / T2 dual echo
    "AX DE TSE",
    "AX DUAL_TSE",
    "DUAL_TSE",
    "sT2W/PD_TSE",
    "Axial PD-T2-FS TSE",
    "Axial PD-T2 TSE",
    "AX PD + T2",
    "PD-T2 DUAL AXIAL TSE",
    "Ax PD /T2",
    "AXIAL PD+T2 TSE",
    "AX T2 DE",
    "t2 weighted double echo",
    # DTI acquisitions and maps other than ADC / trace
    "DTI_gated",
    "DTI_non_gated",
    "DTI_pulse gated_AC/PC line",
    "TRIGGERED DTI",
    "DTI",
    "DTI Sequence",
    "2D DTI EPI FAT SHIFT LEFT",
    "AX DTI LR",
    "Axial DTI R>L",
    "DTI_30dir L-R",
    "DTI_gated_FA",
    "DTI Sequence_FA",
    "DTI_EXP",
    "DTI_FA",
    "DTI_gated AC-PC LINE_FA",
    # resting-state fMRI
    "ep2d_RESTING_STATE",
    "ep2d_bold_rest",
    "rsfMRI_LR",
    "BOLD_RS ACPC_LINE",
    # field maps and calibration
    "B0rf Map",
    "Field_mapping",
    "GRE B0",
    "GRE_B0",
    "Cal_Head_24",
]

CASES: list[tuple[str, str]] = [
    (description, label)
    for label, descriptions in (
        ("T1", T1),
        ("T1C", T1C),
        ("T2", T2),
        ("FLAIR", FLAIR),
        ("DWI", DWI),
        ("ADC", ADC),
        ("LOCALIZER", LOCALIZER),
        ("OTHER", OTHER),
    )
    for description in descriptions
]
