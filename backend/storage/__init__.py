"""Blob storage, SSRF-safe fetching and input staging (no routes of its own but the file endpoint).

blobs.py        the `BlobStore` protocol, key rules, `StoredBlob` / `BlobInfo`
local.py        `LocalBlobStore`: a folder + HMAC-signed URLs
files_route.py  the Starlette route that serves `LocalBlobStore` URLs
s3.py           `S3BlobStore`: any S3-compatible service, presigned URLs
fetch.py        `SafeFetcher`: outbound HTTP that cannot reach internal addresses
sniff.py        media type detection from the bytes themselves
staging.py      `InputStager`: URL / inline media inputs -> files in a job's work folder
expiry.py       output retention: 48 h guarantee, 72 h cleanup, `purge_expired`
"""
