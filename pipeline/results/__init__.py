"""DICOM results of an analysis: the TID 1500 SR, heatmap secondary captures, read-back.

How the analysis task uses it::

    from pipeline.results.model import (AnalysisResult, FindingResult, ModelIdentity,
        NotAnalysedResult, PredecessorReference, SeriesReference, StudyIdentity,
        TriageResult)
    from pipeline.results.heatmap_geometry import resample_to_slices, sort_slices
    from pipeline.results.writer import HeatmapInput, TRIAGE_HEATMAP, write_results

    study = StudyIdentity.from_dataset(any_instance_of_the_study)
    series = SeriesReference(sequence="FLAIR", series_instance_uid=...,
                             sop_class_uid=..., sop_instance_uids=(...))
    result = AnalysisResult(study=study, model=ModelIdentity(...), series=(series, ...),
                            findings=(FindingResult(...), ...), triage=TriageResult(...),
                            predecessor=None)      # or PredecessorReference of the last SR
    slices = sort_slices(flair_datasets)
    heat = resample_to_slices(saliency_as_sitk_image, slices)   # (slices, rows, cols)
    written = write_results(result, out_dir, [HeatmapInput("acute_infarct", "FLAIR",
                                                           slices, heat)])
    written.files          # SR first, then the captures: send them with storescu -R

A study with nothing usable gets ``write_results(NotAnalysedResult(study=...,
model=..., series=..., reason="..."), out_dir)``. :func:`pipeline.results.sr_read.read_sr`
parses a results SR back into these models (``read_sr(build_sr(r)) == r``).
"""
