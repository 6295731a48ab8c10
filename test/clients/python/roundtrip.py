"""pylibmc (on libmemcached): SASL PLAIN over the binary protocol, one set/get round trip."""
import os
import sys

import pylibmc


def round_trip(address: str, key: str, value: str) -> str:
    client = pylibmc.Client(
        [address],
        binary=True,
        username=os.environ["MEMCACHED_USERNAME"],
        password=os.environ["MEMCACHED_PASSWORD"],
        behaviors={"connect_timeout": 10000, "receive_timeout": 10000000, "send_timeout": 10000000},
    )
    try:
        if not client.set(key, value, time=60):
            return "failed: set returned false"
        got = client.get(key)
    except pylibmc.Error as error:
        return f"failed: {type(error).__name__}: {error}"
    finally:
        client.disconnect_all()
    return f"ok {got}" if got == value else f"failed: read back {got!r}"


if __name__ == "__main__":
    verdict = round_trip(*sys.argv[1:4])
    print(f"ROUNDTRIP {verdict}", flush=True)
    sys.exit(0 if verdict.startswith("ok ") else 1)
