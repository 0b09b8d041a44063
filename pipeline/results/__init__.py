"""DICOM results of an analysis: the TID 1500 SR, heatmap secondary captures, read-back.

Entry points: :func:`pipeline.results.writer.write_results` (write one study's
results to a folder) and :func:`pipeline.results.sr_read.read_sr` (parse a results
SR back into :class:`pipeline.results.model.AnalysisResult` /
:class:`~pipeline.results.model.NotAnalysedResult`).
"""
