"""A local look-alike of the Lambda python3.12 base image, built from local files only.

sam runs a zip function in AWS's Lambda base image plus a "rapid" layer holding the runtime
interface emulator (aws-lambda-rie, shipped inside SAM CLI's package). Where no registry is
reachable, this builds both with podman and no network: `podman import` of a root file
system made here, then `podman build --pull=never --network=none` for the rapid layer. sam
uses them through `--invoke-image` and `--skip-pull-image` (devtools/sam_local.py); their
names are the project's own (BASE_REPO), so they never shadow the real image.

The root file system: CPython 3.12 in /var/lang (copied from the bundler's interpreter,
infra.bundling.find_python312, without tests, Tk and IDLE); awslambdaric and its
dependencies in /var/runtime (requirements/lambda-image.txt) with a `bootstrap` that runs it
as the real image's does; in /lib64 the loader and the libraries that Python, its extension
modules and manylinux2014 wheels link against (`librt.so.1` included); in /etc a passwd,
group and nsswitch.conf, so that host names resolve from /etc/hosts.

    python -m devtools.lambda_image build     # both images (about 10 s)
    python -m devtools.lambda_image remove
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from devtools.container_engine import STATE_DIR, podman
from devtools.local_function import host_architecture

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements" / "lambda-image.txt"
SAM_SITE = ROOT / ".venv-sam" / "lib"
BASE_REPO = "localhost/users-api-lambda/python"
WHEEL_PLATFORMS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}
# The libraries a manylinux2014 wheel may link against without shipping them (PEP 599),
# less the graphical ones, which nothing in this function loads.
MANYLINUX2014_LIBS = (
    "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libc.so.6",
    "libnsl.so.1", "libutil.so.1", "libpthread.so.0", "libresolv.so.2", "libcrypt.so.1",
)  # fmt: skip
# Left out of the copied standard library, at any depth, with "config-*" and "_tkinter*".
SKIPPED_STDLIB = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages")
IMAGE_ENV = {
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin:/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
    "/var/task:/var/task/lib:/opt/lib",
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}
BOOTSTRAP = """#!/var/lang/bin/python3.12
# What the python3.12 image's bootstrap does: awslambdaric serves the handler.
import os
import sys

sys.path[:0] = ["/var/task", "/opt/python"]
from awslambdaric.__main__ import main

os.chdir(os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))
main([sys.argv[0], sys.argv[1] if len(sys.argv) > 1 else os.environ["_HANDLER"]])
"""


class CannotBuild(Exception):
    """Something this machine lacks for the image (the message says what)."""


def base_image(architecture: str) -> str:
    return f"{BASE_REPO}:3.12-{architecture}"


def rapid_image(architecture: str) -> str:
    """The name sam derives from `--invoke-image base_image(...)` (repository:rapid-arch)."""
    return f"{BASE_REPO}:rapid-{architecture}"


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def images_ready(architecture: str) -> bool:
    return image_exists(base_image(architecture)) and image_exists(rapid_image(architecture))


def _copy_python(home: Path, lang: Path) -> None:
    (lang / "bin").mkdir(parents=True)
    shutil.copy2(home / "bin" / "python3.12", lang / "bin" / "python3.12")
    for alias in ("python3", "python"):
        (lang / "bin" / alias).symlink_to("python3.12")
    (lang / "lib").mkdir()
    for library in glob.glob(str(home / "lib" / "libpython3*.so*")):
        shutil.copy2(library, lang / "lib", follow_symlinks=True)
    stdlib = lang / "lib" / "python3.12"
    ignore = shutil.ignore_patterns(*SKIPPED_STDLIB, "config-*", "_tkinter*")
    shutil.copytree(home / "lib" / "python3.12", stdlib, ignore=ignore)
    (stdlib / "site-packages").mkdir()


def _install_runtime(runtime: Path, architecture: str) -> None:
    platforms = WHEEL_PLATFORMS[architecture]
    subprocess.run(  # noqa: S603 - pip with fixed arguments
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
            "--implementation", "cp", "--target", str(runtime), "-r", str(REQUIREMENTS),
            *(arg for p in platforms for arg in ("--platform", p)),
        ],
        check=True,
    )  # fmt: skip
    bootstrap = runtime / "bootstrap"
    bootstrap.write_text(BOOTSTRAP)
    bootstrap.chmod(0o755)


_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


def _shared_libraries(rootfs: Path) -> set[Path]:
    """The host's copies of every library the ELF files under rootfs need (ldd), plus
    the manylinux2014 set, plus the dynamic loader."""
    needed: set[Path] = set()
    elf_files = [rootfs / "var" / "lang" / "bin" / "python3.12"]
    elf_files += [Path(p) for p in glob.glob(str(rootfs / "**" / "*.so*"), recursive=True)]
    env = {"LD_LIBRARY_PATH": str(rootfs / "var" / "lang" / "lib")}
    for path in elf_files:
        ldd = ["ldd", str(path)]  # the host's, on files built here
        result = subprocess.run(ldd, capture_output=True, text=True, env=env, check=False)  # noqa: S603
        for match in _LDD_LINE.finditer(result.stdout):
            found = Path(match[1])
            if not found.is_relative_to(rootfs):
                needed.add(found)
    cache = subprocess.check_output(["ldconfig", "-p"], text=True)  # noqa: S607 - the host cache
    for name in MANYLINUX2014_LIBS:
        match = re.search(rf"^\s*{re.escape(name)} \(libc6,x86-64\) => (\S+)$", cache, re.M)
        match = match or re.search(rf"^\s*{re.escape(name)} \([^)]*\) => (\S+)$", cache, re.M)
        if match:
            needed.add(Path(match[1]))
    return needed


def build_rootfs(rootfs: Path, python: str, architecture: str) -> None:
    where = [python, "-c", "import sys; print(sys.base_prefix)"]
    home = Path(subprocess.check_output(where, text=True).strip())  # noqa: S603
    _copy_python(home, rootfs / "var" / "lang")
    _install_runtime(rootfs / "var" / "runtime", architecture)
    lib64 = rootfs / "lib64"
    lib64.mkdir()
    for library in _shared_libraries(rootfs):
        # Under the name it is asked for (a soname symlink on the host), as a real file.
        shutil.copy2(library, lib64 / library.name, follow_symlinks=True)
    for directory in ("var/task", "opt", "etc", "tmp", "usr"):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    (rootfs / "usr" / "lib64").symlink_to("../lib64")
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "etc" / "nsswitch.conf").write_text("hosts: files dns\n")


def _rie(architecture: str) -> Path:
    rie = f"python3*/site-packages/samcli/local/rapid/aws-lambda-rie-{architecture}"
    found = sorted(SAM_SITE.glob(rie))
    if not found:
        raise CannotBuild("SAM CLI is not installed in .venv-sam: run `make sam-setup`")
    return found[0]


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build(architecture: str) -> None:
    """Build the base and rapid images."""
    from infra.bundling import find_python312

    python = find_python312()
    if python is None:
        raise CannotBuild(
            "no CPython 3.12 on this machine to put in the image (python3.12 on PATH or "
            "pyenv's): none of the package registries reachable here ships a relocatable one"
        )
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    remove(architecture)  # not left behind untagged when the new ones take the names
    with tempfile.TemporaryDirectory(dir=STATE_DIR) as work:
        rootfs, tar_path = Path(work) / "rootfs", Path(work) / "rootfs.tar"
        build_rootfs(rootfs, python, architecture)
        with tarfile.open(tar_path, "w") as tar:
            for child in sorted(rootfs.iterdir()):
                tar.add(child, arcname=child.name, filter=_root_owned)
        changes = [f"ENV {name}={value}" for name, value in IMAGE_ENV.items()]
        changes += ["WORKDIR /var/task", 'ENTRYPOINT ["/var/runtime/bootstrap"]']
        podman(
            "import", *(arg for c in changes for arg in ("--change", c)),
            str(tar_path), base_image(architecture), timeout=600,
        )  # fmt: skip
        context = Path(work) / "rapid"
        context.mkdir()
        shutil.copy(_rie(architecture), context / "aws-lambda-rie")
        (context / "aws-lambda-rie").chmod(0o755)
        (context / "Containerfile").write_text(
            f"FROM {base_image(architecture)}\nCOPY aws-lambda-rie /var/rapid/aws-lambda-rie\n"
        )
        podman(
            "build", "--pull=never", "--network=none", "--quiet",
            "-t", rapid_image(architecture), str(context), timeout=600,
        )  # fmt: skip


def remove(*architectures: str) -> None:
    for architecture in architectures or sorted(WHEEL_PLATFORMS):
        for name in (rapid_image(architecture), base_image(architecture)):
            if image_exists(name):
                podman("rmi", "--force", name)
                print(f"removed {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.lambda_image")
    parser.add_argument("action", choices=("build", "remove"))
    if parser.parse_args(argv).action == "remove":
        remove()
        return 0
    started, arch = time.monotonic(), host_architecture()
    try:
        build(arch)
    except CannotBuild as exc:
        print(f"cannot build the local Lambda images: {exc}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    print(f"built {base_image(arch)} and {rapid_image(arch)} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
