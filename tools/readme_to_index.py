"Write nbs/index.ipynb (the docs home page) from README.md, one markdown cell per top-level section."
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
text = (root / "README.md").read_text().strip()
sections = [s.strip() for s in re.split(r"\n(?=## )", text)]
cells = [{"cell_type": "markdown", "metadata": {}, "source": s.splitlines(keepends=True)} for s in sections]
nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
      "nbformat": 4, "nbformat_minor": 5}
(root / "nbs" / "index.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
print("nbs/index.ipynb written from README.md")
