"""``face_detection``: print the face boxes of an image or of a folder of images.

The same command, options and output as face_recognition 1.3.0's tool::

    face_detection IMAGE_OR_FOLDER [--cpus N] [--model hog|cnn]
    # one line per face: filename,top,right,bottom,left

Also ``facelab compat face_detection ...``.  Differences: ``--cpus`` keeps the
output in input order; a file that cannot be read is reported on stderr and
skipped (exit code 2 if it was named on the command line) instead of stopping
the run with a traceback; unknown ``--model`` values are refused.
"""

from __future__ import annotations

import os

import click

from ._common import FacesJob, fail, image_files_in_folder, run, warn_failed, workers


def print_result(filename: str, location) -> None:
    top, right, bottom, left = location
    click.echo(f"{filename},{top},{right},{bottom},{left}")


def process_images(images_to_check: list[str], number_of_cpus: int, model: str) -> bool:
    """Print the boxes of every image; False if some image could not be read."""
    ok = True
    for r in run(images_to_check, FacesJob(model=model.lower(), upsample=0), number_of_cpus):
        if not r.ok:
            warn_failed(r)
            ok = False
            continue
        for f in r.faces:
            print_result(r.source, f.box.to_trbl())
    return ok


def test_image(image_to_check: str, model: str) -> None:
    """Print the boxes of one image (the original's function)."""
    process_images([image_to_check], 1, model)


test_image.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def process_images_in_process_pool(images_to_check: list[str], number_of_cpus: int, model: str) -> None:
    """Print the boxes of many images using ``number_of_cpus`` processes (-1: all cores)."""
    process_images(images_to_check, number_of_cpus, model)


@click.command()
@click.argument("image_to_check")
@click.option("--cpus", default=1, help='number of CPU cores to use in parallel. -1 means "use all in system"')
@click.option(
    "--model",
    default="hog",
    type=click.Choice(["hog", "cnn"], case_sensitive=False),
    help='Which face detection model to use. Options are "hog" or "cnn".',
)
def main(image_to_check: str, cpus: int, model: str) -> None:
    """Print filename,top,right,bottom,left for every face found."""
    workers(cpus)  # refuse a bad --cpus before any work
    if os.path.isdir(image_to_check):
        images = image_files_in_folder(image_to_check)
        process_images(images, cpus, model)
    elif not os.path.exists(image_to_check):
        fail(f"{image_to_check}: no such file or folder")
    elif not process_images([image_to_check], cpus, model):
        raise click.exceptions.Exit(2)


if __name__ == "__main__":
    main()
