"""Test-only S3 server for wpbackup's storage suite: moto's server, an S3 implementation
independent of s3s-fs (it lists unfinished multipart uploads, enforces S3's 5 MiB minimum
part size, and keeps everything in memory).

Starts moto's server in this process, creates the buckets through its S3 API (moto has no
other way to make one) and prints "ready". moto accepts any key: its switch that turns
authentication on (INITIAL_NO_AUTH_ACTION_COUNT) also rejects correctly signed requests in
moto 5.2.1 (a ListObjectsV2 with a prefix, a key with '+'), so the suite checks wrong keys on
s3s-fs only (docs/storage.md).

Settings come from the environment: MOTO_PORT, MOTO_BUCKETS (comma-separated).
Stops on SIGTERM or SIGINT.
"""

import os
import signal

import boto3
from moto.server import ThreadedMotoServer

PORT = int(os.environ["MOTO_PORT"])
BUCKETS = [b for b in os.environ.get("MOTO_BUCKETS", "").split(",") if b]


def main():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=PORT, verbose=False)
    server.start()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{PORT}",
        region_name="us-east-1",
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
    )
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


if __name__ == "__main__":
    # Blocked before moto's threads start, so that they inherit it and sigwait gets them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
