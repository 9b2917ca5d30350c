"""Data provenance: scan a training set before use and issue a certificate.

- :mod:`darkmirror.scan.detectors`: what the scan looks for (toxicity, insecure code,
  banned numbers, secrets and personal data, duplicates), record by record;
- :mod:`darkmirror.scan.scanner`: streams a JSONL/CSV/Parquet file through the detectors
  in constant memory and writes the per-record findings;
- :mod:`darkmirror.scan.policy`: the pass/fail rules a certificate is judged by;
- :mod:`darkmirror.scan.canary`: the behavioural scan, a brief fine-tune of a reference
  model on a sample of the data, for what reading the data cannot see;
- :mod:`darkmirror.scan.certificate`: the certificate, its signature and its verification;
- :mod:`darkmirror.scan.attestation`: the certificate as a signed in-toto Statement (DSSE);
- :mod:`darkmirror.scan.sarif`: the code and secrets findings as SARIF 2.1.0.
"""
