"""``face_recognition``: who, among a folder of known people, is in each image.

The same command, options and output as face_recognition 1.3.0's tool::

    face_recognition KNOWN_PEOPLE_FOLDER IMAGE_OR_FOLDER [--cpus N] [--tolerance 0.6] [--show-distance true]
    # one line per face: filename,name[,distance]   (unknown_person / no_persons_found)

``KNOWN_PEOPLE_FOLDER`` holds one photo per person, named after them
(``obama.jpg``).  Also ``facelab compat face_recognition ...``.  Differences:
``--cpus`` is also used for the known people and keeps the output in input
order; a file that cannot be read is reported on stderr and skipped (exit code
2 if it was named on the command line) instead of stopping the run with a
traceback; a missing known-people folder is an error.
"""

from __future__ import annotations

import os

import click
import numpy as np

from ...types import ImageResult
from . import api
from ._common import FacesJob, fail, image_files_in_folder, run, warn_failed, workers

#: the original shrinks images larger than this before looking for faces
MAX_SIDE = 1600


def _encodings(r: ImageResult) -> list[np.ndarray]:
    return [np.asarray(f.embedding.vector, dtype=np.float64) for f in r.faces if f.embedding is not None]


def scan_known_people(known_people_folder: str, cpus: int = 1) -> tuple[list[str], list[np.ndarray]]:
    """Names (file names without extension) and the first face encoding of each known person's photo."""
    known_names: list[str] = []
    known_face_encodings: list[np.ndarray] = []
    files = image_files_in_folder(known_people_folder)
    for r in run(files, FacesJob(encode=True), cpus, "known people"):
        if not r.ok:
            warn_failed(r, "Ignoring")
            continue
        encodings = _encodings(r)
        if len(encodings) > 1:
            click.echo(f"WARNING: More than one face found in {r.source}. Only considering the first face.")
        if len(encodings) == 0:
            click.echo(f"WARNING: No faces found in {r.source}. Ignoring file.")
        else:
            known_names.append(os.path.splitext(os.path.basename(r.source))[0])
            known_face_encodings.append(encodings[0])
    return known_names, known_face_encodings


def print_result(filename: str, name: str, distance, show_distance: bool = False) -> None:
    if show_distance:
        click.echo(f"{filename},{name},{distance}")
    else:
        click.echo(f"{filename},{name}")


def _print_matches(filename: str, unknown_encodings, known_names, known_face_encodings, tolerance: float, show_distance: bool) -> None:
    for unknown_encoding in unknown_encodings:
        distances = api.face_distance(known_face_encodings, unknown_encoding)
        result = list(distances <= tolerance)
        if True in result:
            for is_match, name, distance in zip(result, known_names, distances):
                if is_match:
                    print_result(filename, name, distance, show_distance)
        else:
            print_result(filename, "unknown_person", None, show_distance)
    if not unknown_encodings:
        print_result(filename, "no_persons_found", None, show_distance)


def process_images(
    images_to_check: list[str], known_names, known_face_encodings, number_of_cpus: int, tolerance: float, show_distance: bool
) -> bool:
    """Print the matches of every image; False if some image could not be read."""
    ok = True
    for r in run(images_to_check, FacesJob(encode=True, max_side=MAX_SIDE), number_of_cpus):
        if not r.ok:
            warn_failed(r)
            ok = False
            continue
        _print_matches(r.source, _encodings(r), known_names, known_face_encodings, tolerance, show_distance)
    return ok


def test_image(image_to_check: str, known_names, known_face_encodings, tolerance: float = 0.6, show_distance: bool = False) -> None:
    """Print the matches of one image (the original's function)."""
    process_images([image_to_check], known_names, known_face_encodings, 1, tolerance, show_distance)


test_image.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def process_images_in_process_pool(images_to_check, known_names, known_face_encodings, number_of_cpus, tolerance, show_distance) -> None:
    """Print the matches of many images using ``number_of_cpus`` processes (-1: all cores)."""
    process_images(list(images_to_check), known_names, known_face_encodings, number_of_cpus, tolerance, show_distance)


@click.command()
@click.argument("known_people_folder")
@click.argument("image_to_check")
@click.option(
    "--cpus",
    default=1,
    help='number of CPU cores to use in parallel (can speed up processing lots of images). -1 means "use all in system"',
)
@click.option(
    "--tolerance",
    default=0.6,
    help="Tolerance for face comparisons. Default is 0.6. Lower this if you get multiple matches for the same person.",
)
@click.option("--show-distance", default=False, type=bool, help="Output face distance. Useful for tweaking tolerance setting.")
def main(known_people_folder: str, image_to_check: str, cpus: int, tolerance: float, show_distance: bool) -> None:
    """Print filename,name for every face found (unknown_person if nobody known matches, no_persons_found if no face)."""
    workers(cpus)  # refuse a bad --cpus before any work
    if not os.path.isdir(known_people_folder):
        fail(f"{known_people_folder}: no such folder (the known people folder holds one photo per person)")
    if not os.path.isdir(image_to_check) and not os.path.exists(image_to_check):
        fail(f"{image_to_check}: no such file or folder")
    known_names, known_face_encodings = scan_known_people(known_people_folder, cpus)
    if not known_names:
        click.echo(f"WARNING: no known faces in {known_people_folder}; every face will be unknown_person.", err=True)
    if os.path.isdir(image_to_check):
        process_images(image_files_in_folder(image_to_check), known_names, known_face_encodings, cpus, tolerance, show_distance)
    elif not process_images([image_to_check], known_names, known_face_encodings, cpus, tolerance, show_distance):
        raise click.exceptions.Exit(2)


if __name__ == "__main__":
    main()
