"""The key-encryption key file: made once, whole, 0600, when processes start together
(`bridge serve --workers N` on a fresh folder)."""

from __future__ import annotations

import base64
import stat
import subprocess
import sys
from pathlib import Path

from bridge.jose.sealing import KEK_ENVIRONMENT, load_key_encryption_key

READ = (
    "import sys; from pathlib import Path; "
    "from bridge.jose.sealing import load_key_encryption_key; "
    "print(load_key_encryption_key(Path(sys.argv[1]), {}).hex())"
)


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "state" / "signing.kek"
    for _ in range(3):  # a race is a matter of luck: several rounds of eight processes
        if path.exists():
            path.unlink()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", READ, str(path)], stdout=subprocess.PIPE, text=True
            )
            for _ in range(8)
        ]
        keys = {proc.communicate(timeout=60)[0].strip() for proc in procs}
        assert all(proc.returncode == 0 for proc in procs)
        assert len(keys) == 1 and len(next(iter(keys))) == 64
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # Nothing left behind but the key.
        assert [p.name for p in path.parent.iterdir()] == ["signing.kek"]


def test_new_kek_prints_a_key_the_bridge_reads_from_the_environment(tmp_path: Path) -> None:
    """`bridge keys new-kek` makes a key for the secret store and writes nothing; the bridge
    then takes it from `BRIDGE_KEY_ENCRYPTION_KEY` and makes no key file."""
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[storage]\npath = "var/db.sqlite3"\n[oauth]\nkey_encryption_key_file = "var/k.kek"\n'
    )

    def new_kek() -> str:
        command = [sys.executable, "-m", "bridge.cli", "keys", "new-kek", "--config", str(config)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    first, second = new_kek(), new_kek()
    assert first != second and len(base64.b64decode(first, validate=True)) == 32
    assert not (tmp_path / "var").exists()  # nothing made: no database, no key file
    assert load_key_encryption_key(tmp_path / "var" / "k.kek", {KEK_ENVIRONMENT: first}) == (
        base64.b64decode(first)
    )
    assert not (tmp_path / "var").exists()
