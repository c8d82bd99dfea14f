"""The fingerprint of a pseudonym key file, with Python's hmac module (see the README,
"Pseudonymised columns").

usage: fingerprint.py KEYFILE
"""
import hashlib
import hmac
import sys

key = open(sys.argv[1]).read().strip().encode()
print(hmac.new(key, b"customs-risk pseudonym key fingerprint v1", hashlib.sha256).hexdigest()[:16])
