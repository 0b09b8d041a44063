"""The DICOM receive path: association gate, C-ECHO, durable C-STORE, worker processes."""
