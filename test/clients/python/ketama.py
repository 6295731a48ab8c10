"""A consistent-hashing (ketama) pylibmc client over a fleet of servers.

  ketama set PREFIX COUNT TAG ADDRESS...  sets PREFIX-0 .. PREFIX-(COUNT-1) to "<key>:<TAG>";
                                          prints "STORED <key>" or "NOTSTORED <key> <reason>" per key
  ketama get PREFIX COUNT ADDRESS...      prints "HIT <key> <value read back>" or "MISS <key> <reason>"

Credentials come from MEMCACHED_USERNAME and MEMCACHED_PASSWORD.
"""
import os
import sys

import pylibmc


def client(addresses: list) -> pylibmc.Client:
    return pylibmc.Client(
        addresses,
        binary=True,
        username=os.environ["MEMCACHED_USERNAME"],
        password=os.environ["MEMCACHED_PASSWORD"],
        behaviors={
            # The continuum is built from the server addresses: a replacement at the same address takes
            # over exactly the keys of the server it replaces.
            "ketama": True,
            # A failed server stays in the continuum (no ejection): its keys miss instead of moving, and
            # after one failed connect it is skipped at once until the retry timeout.
            "remove_failed": 0,
            "retry_timeout": 30,
            "connect_timeout": 1000,
            "receive_timeout": 2000000,
            "send_timeout": 2000000,
        },
    )


def main(argv: list) -> None:
    mode, prefix, count = argv[0], argv[1], int(argv[2])
    tag = argv[3] if mode == "set" else None
    memcache = client(argv[4:] if mode == "set" else argv[3:])
    for i in range(count):
        key = f"{prefix}-{i}"
        try:
            if mode == "set":
                stored = memcache.set(key, f"{key}:{tag}", time=300)
                print(f"STORED {key}" if stored else f"NOTSTORED {key} set returned false")
            else:
                value = memcache.get(key)
                print(f"HIT {key} {value}" if value is not None else f"MISS {key} not found")
        except pylibmc.Error as error:
            outcome = "NOTSTORED" if mode == "set" else "MISS"
            print(f"{outcome} {key} {type(error).__name__}: {error}".replace("\n", " "))
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
