#!/usr/bin/env python3
"""Upload a directory tree to a bucket of an S3-compatible server (creating the bucket).

    s3_put.py ENDPOINT BUCKET PREFIX DIR [DIR2=PREFIX2 ...]

Keys are PREFIX + the file's path under DIR. Prints the number of objects uploaded.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
pairs = [(sys.argv[4], sys.argv[3])] + [tuple(a.split("=", 1)) for a in sys.argv[5:]]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
jobs = []
for root, prefix in pairs:
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            jobs.append((p, prefix + os.path.relpath(p, root).replace(os.sep, "/")))
with ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda j: s3.upload_file(j[0], bucket, j[1]), jobs))
print(len(jobs))
