"""kcat with a librdkafka that can log in to Kafka 4.

Debian 12's kcat links the system librdkafka 2.0.2, whose SCRAM client repeats the client
nonce in its final message; Kafka 4 checks the nonce strictly (RFC 5802) and refuses every
SCRAM login from librdkafka older than 2.6.1. The C API and soname (librdkafka.so.1) have
stayed compatible, so `tiaojie kcat` runs Debian's kcat on the librdkafka that the
confluent-kafka wheel of this workspace carries (2.16), found by the loader through a
folder holding one `librdkafka.so.1` link to it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tiaojie.runtime.settings import default_cache_dir


class KcatMissing(RuntimeError):
    """kcat is not installed (./dev installs Debian's kcat package)."""


def bundled_librdkafka() -> Path:
    """The librdkafka shared object of the confluent-kafka wheel."""
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if not found:
        raise FileNotFoundError(f"no librdkafka in {libs}")
    return found[0]


def library_dir(cache: Path | None = None) -> Path:
    """A folder whose librdkafka.so.1 is the bundled librdkafka (made on first use)."""
    import confluent_kafka

    target = bundled_librdkafka()
    folder = (cache or default_cache_dir()) / f"librdkafka-{confluent_kafka.libversion()[0]}"
    link = folder / "librdkafka.so.1"
    if not (link.is_symlink() and link.resolve() == target):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".link-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
    return folder


def kcat_command() -> tuple[str, dict[str, str]]:
    """The kcat binary and the environment that gives it the newer librdkafka."""
    binary = shutil.which("kcat")
    if binary is None:
        raise KcatMissing("kcat is not installed: apt-get install kcat (./dev does this)")
    previous = os.environ.get("LD_LIBRARY_PATH")
    path = str(library_dir()) + (f":{previous}" if previous else "")
    return binary, {**os.environ, "LD_LIBRARY_PATH": path}
