"""Medical imaging diagnosis: DICOM in, de-identified, findings with heatmaps, SR and FHIR out.

Modules, one job each:

- ``settings``: the domain's own limits (env prefix ``VERTICALS_MEDICAL_``);
- ``imaging``: decode DICOM / a zipped series / PNG / JPEG into one grayscale image in [0, 1],
  with ``codestreams`` (transfer syntax, encapsulated frame sizes checked before decoding) and
  ``pixels`` (decoding a frame, the grayscale pipeline, VOI windows);
- ``deid``: DICOM PS3.15 basic-profile de-identification, applied before anything is stored;
- ``routing``: which task (model) an upload goes to;
- ``runtime``: production classifiers behind a micro-batcher, Grad-CAM (the serving engine);
- ``service``: the study workflow shared by the API and the dashboard;
- ``archive``: what is kept of an upload (de-identified Part 10 file, display values, heatmap);
- ``fhir`` / ``sr`` / ``overlay``: the outputs (FHIR R4 DiagnosticReport, DICOM SR, heatmap PNG);
- ``api`` / ``page`` / ``cli`` / ``plugin``: the faces of the domain.

The classifiers themselves live in ``verticals.domains.medical.model``.
"""
